// Import and export customers as CSV, and import workbooks (xlsx, xls, ods).
//
// Import: the chosen file is checked first (a dry run, which writes nothing) and its
// report shown: how many rows would create, update or leave a customer unchanged, and
// every failed row with its line, column and reason. "Apply" then imports it for real,
// with a progress bar.
//
// The API imports a file in one request, which shows no progress and takes at most
// 10,000 rows and 6 MB. So the console sends the file in chunks of rows, one after
// another, each behind the file's header line, and adds the chunks' reports up. The
// server numbers the lines of the body it receives, not of the file, so every chunk
// keeps a map from its lines to the file's: a failed row is reported at the line the
// user finds it in their spreadsheet. The server fails a row naming an id or an email
// that an earlier row names, but only within one request; so those rows are found here,
// over the whole file, and failed without being sent.
//
// A workbook cannot be split here (the browser has no reader for it), so it goes whole
// (the API reads its first sheet), and the bar only says that it is being worked on.
// When the server's time per request runs out part way, "Apply" sends the workbook
// again until the server gets to its end: rows already imported come back unchanged.
// (A check never runs out: the server's budget stops only writes.)
//
// Export: "Export CSV" downloads the customers of a filter (every page the API answers)
// as one file. The filter comes from the address, as on the customers list
// (#/import?segment=ID, ?cluster.<field>=<value>, ?email=...), and can be changed here.

import { request, allCsv } from '../api.js';
import { number, translator } from '../i18n.js';
import { h, show, header, table, problem, notice, row, uid, download, customerFilterSelect, filterOf } from '../ui.js';
import { listQuery } from './customers.js';

const t = translator({
  en: {
    title: 'Import and export',
    importTitle: 'Import customers',
    importHelp: 'A CSV file (UTF-8) or a workbook (xlsx, xls, ods: its first sheet) whose first line names the columns: id or email to find each customer, then first_name, last_name, document, phone, segment_id and any field by its API name. A row updates the customer with its id, or else with its email, or creates one. An empty cell removes a value; columns the file lacks are left as they are.',
    file: 'CSV file or workbook',
    check: 'Check file',
    apply: 'Apply',
    progress: 'Progress',
    checking: 'Checking: {done} of {total} rows',
    importing: 'Importing: {done} of {total} rows',
    checkingWorkbook: 'Checking the workbook…',
    importingWorkbook: 'Importing the workbook… {pass}',
    pass: '(round {n}: the server went on from line {line})',
    checkResult: 'Check result (nothing was written)',
    importResult: 'Import result',
    created: 'To create',
    updated: 'To update',
    unchanged: 'Unchanged',
    failed: 'Failed',
    createdDone: 'Created',
    updatedDone: 'Updated',
    failedCaption: 'Rows that cannot be imported',
    line: 'Line',
    customer: 'Customer',
    column: 'Column',
    reason: 'Reason',
    wholeRow: '(whole row)',
    noFailures: 'Every row can be imported.',
    readyToApply: '“Apply” imports the rows that can be imported; failed rows are left out.',
    nothingToApply: 'There is nothing to import: no row creates or changes a customer.',
    applied: 'The import is done: {created} customers created, {updated} updated.',
    appliedNote: 'Segment and cluster counts catch up within a few seconds.',
    stoppedAt: 'The import stopped at line {line}: rows before it were imported. Importing the whole file again is safe (rows already imported come back unchanged).',
    notUtf8: 'The file is not UTF-8 text. Save the sheet as “CSV UTF-8” and choose it again.',
    noHeader: 'The file is empty: its first line must name the columns.',
    refused: 'The file cannot be imported:',
    chooseFile: 'Choose a CSV file or a workbook first.',
    stalled: 'The server stopped at line {line} without importing anything.',
    duplicateId: 'line {line} already has id `{id}`',
    duplicateEmail: 'line {line} already has email `{email}`',
    exportTitle: 'Export customers',
    exportHelp: 'A CSV file with the core columns and every field, which imports back unchanged.',
    exportFilter: 'Customers to export',
    export: 'Export CSV',
    exporting: 'Exporting… {pages} parts read',
    exported: '{file} is downloaded: {count} customers.',
  },
  es: {
    title: 'Importar y exportar',
    importTitle: 'Importar clientes',
    importHelp: 'Un archivo CSV (UTF-8) o un libro (xlsx, xls, ods: su primera hoja) cuya primera línea nombra las columnas: id o email para encontrar a cada cliente, y además first_name, last_name, document, phone, segment_id y cualquier campo por su nombre en la API. Una fila actualiza el cliente con su id, o si no el de su email, o crea uno nuevo. Una celda vacía borra el valor; las columnas que el archivo no trae no se tocan.',
    file: 'Archivo CSV o libro',
    check: 'Comprobar el archivo',
    apply: 'Aplicar',
    progress: 'Progreso',
    checking: 'Comprobando: {done} de {total} filas',
    importing: 'Importando: {done} de {total} filas',
    checkingWorkbook: 'Comprobando el libro…',
    importingWorkbook: 'Importando el libro… {pass}',
    pass: '(vuelta {n}: el servidor siguió desde la línea {line})',
    checkResult: 'Resultado de la comprobación (no se ha guardado nada)',
    importResult: 'Resultado de la importación',
    created: 'Se crearán',
    updated: 'Se actualizarán',
    unchanged: 'Sin cambios',
    failed: 'Con errores',
    createdDone: 'Creados',
    updatedDone: 'Actualizados',
    failedCaption: 'Filas que no se pueden importar',
    line: 'Línea',
    customer: 'Cliente',
    column: 'Columna',
    reason: 'Motivo',
    wholeRow: '(toda la fila)',
    noFailures: 'Todas las filas se pueden importar.',
    readyToApply: '«Aplicar» importa las filas correctas; las filas con errores se omiten.',
    nothingToApply: 'No hay nada que importar: ninguna fila crea ni cambia un cliente.',
    applied: 'Importación terminada: {created} clientes creados y {updated} actualizados.',
    appliedNote: 'Los recuentos de segmentos y clústeres se ponen al día en unos segundos.',
    stoppedAt: 'La importación se detuvo en la línea {line}: las filas anteriores se importaron. Puede volver a importar el archivo completo sin riesgo (las filas ya importadas saldrán sin cambios).',
    notUtf8: 'El archivo no es texto UTF-8. Guarde la hoja como «CSV UTF-8» y vuelva a elegirla.',
    noHeader: 'El archivo está vacío: su primera línea debe nombrar las columnas.',
    refused: 'No se puede importar el archivo:',
    chooseFile: 'Elija primero un archivo CSV o un libro.',
    stalled: 'El servidor se detuvo en la línea {line} sin importar nada.',
    duplicateId: 'la línea {line} ya tiene el id `{id}`',
    duplicateEmail: 'la línea {line} ya tiene el email `{email}`',
    exportTitle: 'Exportar clientes',
    exportHelp: 'Un archivo CSV con las columnas básicas y todos los campos, que se vuelve a importar sin cambios.',
    exportFilter: 'Clientes que exportar',
    export: 'Exportar CSV',
    exporting: 'Exportando… {pages} partes leídas',
    exported: 'Se ha descargado {file}: {count} clientes.',
  },
});

/** Rows and bytes per request: small enough for a smooth progress bar and well within
 *  the API's 10,000 rows, 6 MB and 10 s per request. */
const CHUNK_ROWS = 200;
const CHUNK_BYTES = 1_000_000;

/** Workbook media types by file name extension, as the API names them. */
const WORKBOOKS = {
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  xls: 'application/vnd.ms-excel',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
};

export async function render(main, { query }) {
  show(main,
    header(t('title')),
    importSection(),
    await exportSection(listQuery(query)));
}

// ---- Import ----

function importSection() {
  const accept = ['.csv', 'text/csv', ...Object.keys(WORKBOOKS).map((e) => `.${e}`), ...Object.values(WORKBOOKS)];
  const fileInput = h('input', { type: 'file', accept: accept.join(',') });
  const checkButton = h('button', { type: 'submit', class: 'primary' }, t('check'));
  const bar = h('progress', { id: uid('progress'), max: 1, value: 0 });
  const barText = h('span', { role: 'status' });
  const progress = h('div', { class: 'import-progress', hidden: true },
    h('label', { for: bar.id }, t('progress')), bar, barText);
  const result = h('div', { class: 'import-result' });
  const formEl = h('form', { class: 'form import-form', novalidate: true },
    h('p', { class: 'hint' }, t('importHelp')),
    row(t('file'), fileInput),
    h('div', { class: 'actions' }, checkButton));

  let file = null; // the chosen file, read once it is checked
  fileInput.addEventListener('change', () => {
    file = null;
    show(result);
  });

  /** Runs the file through the API, with the bar; shows the report, or why it failed. */
  async function run(dryRun) {
    fileInput.disabled = true;
    checkButton.disabled = true;
    progress.hidden = false;
    const onProgress = (done, total) => {
      bar.max = Math.max(total, 1);
      bar.value = done;
      barText.textContent = t(dryRun ? 'checking' : 'importing', { done: number(done), total: number(total) });
    };
    // A workbook's progress is unknown: an indeterminate bar, and the round it is in.
    const onRound = (round, fromLine) => {
      bar.removeAttribute('value');
      barText.textContent = dryRun
        ? t('checkingWorkbook')
        : t('importingWorkbook', { pass: round > 1 ? t('pass', { n: number(round), line: number(fromLine, { useGrouping: false }) }) : '' }).trim();
    };
    show(result);
    try {
      const report = file.workbook
        ? await importWorkbook(file, dryRun, onRound)
        : await importFile(file, dryRun, onProgress);
      show(result, dryRun ? checkView(report, () => run(false)) : appliedView(report));
    } catch (err) {
      show(result, failureView(err, dryRun));
    } finally {
      fileInput.disabled = false;
      checkButton.disabled = false;
      progress.hidden = true;
    }
    result.querySelector('h2')?.focus();
  }

  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = fileInput.files[0];
    const refuse = (text) => show(result, h('div', { class: 'problem', role: 'alert' }, text));
    if (!chosen) {
      refuse(t('chooseFile'));
      return;
    }
    try {
      const type = WORKBOOKS[chosen.name.split('.').pop().toLowerCase()];
      file = type ? { workbook: chosen, type } : readCsv(await decode(chosen));
    } catch (err) {
      refuse(err.message);
      return;
    }
    await run(true);
  });

  return h('section', { 'aria-labelledby': 'import-title' },
    h('h2', { id: 'import-title' }, t('importTitle')),
    formEl, progress, result);
}

/** The file's text; a file that is not UTF-8 (a legacy "CSV" or a workbook) is refused
 *  here, since the browser would otherwise read it with replacement characters. */
async function decode(chosen) {
  try {
    // The byte order mark, if any, is dropped (TextDecoder's default), as the API does.
    return new TextDecoder('utf-8', { fatal: true }).decode(await chosen.arrayBuffer());
  } catch {
    throw new Error(t('notUtf8'));
  }
}

/** The dry run's report, with "Apply" when there is something to import. */
function checkView(report, apply) {
  const toApply = report.created + report.updated;
  const applyButton = h('button', { type: 'button', class: 'primary', onclick: () => { applyButton.disabled = true; apply(); } }, t('apply'));
  return h('section', { 'aria-labelledby': 'import-check' },
    h('h2', { id: 'import-check', tabindex: '-1' }, t('checkResult')),
    counts(report, { created: t('created'), updated: t('updated') }),
    failures(report.failed),
    toApply
      ? h('div', { class: 'toolbar' }, h('p', { class: 'hint' }, t('readyToApply')), applyButton)
      : h('p', {}, t('nothingToApply')));
}

function appliedView(report) {
  return h('section', { 'aria-labelledby': 'import-applied' },
    h('h2', { id: 'import-applied', tabindex: '-1' }, t('importResult')),
    notice(t('applied', { created: number(report.created), updated: number(report.updated) })),
    h('p', { class: 'hint' }, t('appliedNote')),
    counts(report, { created: t('createdDone'), updated: t('updatedDone') }),
    failures(report.failed));
}

/** A whole-file refusal (a header naming unknown columns: 422 with each column), or a
 *  request that failed part way, with what was imported before it. */
function failureView(err, dryRun) {
  const details = err.problem?.errors || [];
  const parts = [details.length
    ? h('div', { class: 'problem', role: 'alert' }, h('strong', {}, t('refused')), h('ul', {}, details.map((d) => h('li', {}, d.detail))))
    : problem(err)];
  if (!dryRun && err.report && err.atLine) {
    parts.push(h('p', { role: 'alert' }, t('stoppedAt', { line: number(err.atLine, { useGrouping: false }) })),
      counts(err.report, { created: t('createdDone'), updated: t('updatedDone') }),
      failures(err.report.failed));
  }
  return h('div', {}, parts);
}

function counts(report, words) {
  const item = (label, value) => [h('dt', {}, label), h('dd', {}, number(value))];
  return h('dl', { class: 'import-counts' },
    item(words.created, report.created),
    item(words.updated, report.updated),
    item(t('unchanged'), report.unchanged),
    item(t('failed'), report.failed.length));
}

/** One table row per problem: a row can fail for several reasons. */
function failures(failed) {
  if (!failed.length) return h('p', {}, t('noFailures'));
  const rows = failed.flatMap((f) => f.errors.map((e) => ({ ...e, line: f.line, id: f.id })));
  return table([
    { label: t('line'), cell: (r) => number(r.line, { useGrouping: false }), numeric: true },
    { label: t('customer'), cell: (r) => r.id || '' },
    { label: t('column'), cell: (r) => r.column || t('wholeRow') },
    { label: t('reason'), cell: (r) => r.detail },
  ], rows, { caption: t('failedCaption') });
}

/** Imports (or, with `dryRun`, checks) a read file chunk by chunk; resolves to the
 *  summed report with the file's line numbers. A request that fails rejects with its
 *  error, carrying the report so far (`report`) and the first line not imported
 *  (`atLine`). */
async function importFile(file, dryRun, onProgress) {
  const report = { created: 0, updated: 0, unchanged: 0, failed: [...file.duplicates] };
  const sorted = () => report.failed.sort((a, b) => a.line - b.line);
  const total = file.records.length;
  let done = 0;
  onProgress(done, total);
  // A file without rows is still sent (its header alone), so the API checks the header.
  const queue = file.records.length ? chunks(file.records) : [[]];
  while (queue.length) {
    const records = queue.shift();
    const chunk = body(file.header, records);
    let answer;
    try {
      answer = (await request('POST', '/customers/import', {
        query: { dry_run: dryRun ? 'true' : undefined },
        body: chunk.text,
        type: 'text/csv; charset=utf-8',
      })).body;
    } catch (err) {
      sorted();
      throw Object.assign(err, { report, atLine: records[0]?.line });
    }
    const fileLine = (line) => chunk.byLine.get(line)?.line ?? line;
    report.created += answer.created;
    report.updated += answer.updated;
    report.unchanged += answer.unchanged;
    for (const failed of answer.failed) {
      report.failed.push({
        ...failed,
        line: fileLine(failed.line),
        // "line N already imports customer X" names a line of the chunk, too.
        errors: failed.errors.map((e) => ({ ...e, detail: e.detail.replace(/^line (\d+) /, (_, n) => `line ${fileLine(Number(n))} `) })),
      });
    }
    let sent = records.length;
    if (answer.stopped_at_line) {
      // Out of time on the server: the rest of this chunk goes again, first. The server
      // imports at least one row before it stops, so the rest is always shorter.
      sent = records.indexOf(chunk.byLine.get(answer.stopped_at_line));
      if (sent <= 0) {
        sorted();
        throw Object.assign(new Error(t('stalled', { line: fileLine(answer.stopped_at_line) })), { report, atLine: records[0].line });
      }
      queue.unshift(records.slice(sent));
    }
    done += sent;
    onProgress(done, total);
  }
  sorted();
  return report;
}

/** Imports (or checks) a workbook, sent whole; resolves to the report. An import the
 *  server stops part way is sent again until it reaches the end: the last answer then
 *  covers the whole workbook, in which the rows of earlier rounds come back unchanged,
 *  so those are counted where they were created or updated. */
async function importWorkbook(file, dryRun, onRound) {
  const earlier = { created: 0, updated: 0 };
  // What a failure part way leaves imported, for `failureView`.
  const partly = (err, line) => Object.assign(err, { report: { ...earlier, unchanged: 0, failed: [] }, atLine: line });
  let from = 1;
  for (let round = 1; ; round += 1) {
    onRound(round, from);
    let answer;
    try {
      answer = (await request('POST', '/customers/import', {
        query: { dry_run: dryRun ? 'true' : undefined },
        body: file.workbook,
        type: file.type,
      })).body;
    } catch (err) {
      throw round > 1 ? partly(err, from) : err;
    }
    const stop = answer.stopped_at_line;
    if (!stop) {
      return {
        created: earlier.created + answer.created,
        updated: earlier.updated + answer.updated,
        unchanged: answer.unchanged - earlier.created - earlier.updated,
        failed: answer.failed,
      };
    }
    if (stop <= from) {
      throw partly(new Error(t('stalled', { line: stop })), from);
    }
    // This round's rows before `stop` come back unchanged in the next one.
    earlier.created += answer.created;
    earlier.updated += answer.updated;
    from = stop;
  }
}

/** The rows in runs of at most CHUNK_ROWS rows and about CHUNK_BYTES bytes. */
function chunks(records) {
  const encoder = new TextEncoder();
  const runs = [];
  let run = [];
  let bytes = 0;
  for (const record of records) {
    const size = encoder.encode(record.text).length;
    if (run.length && (run.length === CHUNK_ROWS || bytes + size > CHUNK_BYTES)) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(record);
    bytes += size;
  }
  runs.push(run);
  return runs;
}

/** The body of one request: the header, then the records as the file writes them; and
 *  which record starts at each of its lines. */
function body(header, records) {
  const byLine = new Map();
  let line = 1 + lineEnds(header.text);
  for (const record of records) {
    byLine.set(line, record);
    line += lineEnds(record.text);
  }
  return { text: header.text + records.map((r) => r.text).join(''), byLine };
}

// ---- Reading CSV as the API does (functions/lib/domain/src/spreadsheet/csv_records.rs) ----

/** Line ends as the API counts them: `\r\n`, `\n` and a lone `\r`. */
function lineEnds(text) {
  return (text.match(/\r\n|\n|\r/g) || []).length;
}

/** `;` when the first line holds more `;` than `,` outside quotes, else `,`. */
function separatorOf(text) {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    else if ((c === '\n' || c === '\r') && !quoted) break;
    else if (c === ',' && !quoted) commas += 1;
    else if (c === ';' && !quoted) semicolons += 1;
  }
  return semicolons > commas ? ';' : ',';
}

/** Reads one record from `start`: its cells and where the next one starts (after its
 *  line end). RFC 4180 as the `csv` crate reads it: a quote opens a quoted value only
 *  at the start of a value; `""` inside is a quote; text after the closing quote is
 *  kept; a line break outside quotes ends the record. */
function record(text, start, separator) {
  const cells = [];
  let cell = '';
  let i = start;
  let quoted = false;
  let fresh = true; // at the start of a value
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 2; continue; }
      if (c === '"') quoted = false;
      else cell += c;
      i += 1;
      continue;
    }
    if (c === '"' && fresh) { quoted = true; fresh = false; i += 1; continue; }
    if (c === separator) { cells.push(cell); cell = ''; fresh = true; i += 1; continue; }
    if (c === '\n' || c === '\r') {
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      cells.push(cell);
      return { cells, end: i };
    }
    cell += c;
    fresh = false;
    i += 1;
  }
  cells.push(cell);
  return { cells, end: i };
}

const blank = (cell) => /^[ \t\n\f\r]*$/.test(cell);

/** A file as the API reads it: the header, then each data record with its text as in
 *  the file and the 1-based line where it starts. Blank lines and rows whose cells are
 *  all blank are left out (the API skips them); rows naming an id, or an email in any
 *  letter case, that an earlier row names go to `duplicates`, failed with the API's
 *  reasons. */
function readCsv(text) {
  const separator = separatorOf(text);
  const found = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    if (text[i] === '\n' || text[i] === '\r') { // blank lines: skipped, but counted
      const end = text[i] === '\r' && text[i + 1] === '\n' ? i + 2 : i + 1;
      i = end;
      line += 1;
      continue;
    }
    const { cells, end } = record(text, i, separator);
    const raw = text.slice(i, end);
    found.push({ line, text: raw, cells });
    line += lineEnds(raw);
    i = end;
  }
  const [header, ...rows] = found;
  if (!header || header.cells.every(blank)) throw new Error(t('noHeader'));
  // A header without a line end (a file of the header alone) gets one, so that rows
  // can follow it in a request.
  if (!lineEnds(header.text)) header.text += '\n';

  const names = header.cells.map((c) => c.trim().toLowerCase());
  const idColumn = names.indexOf('id');
  const emailColumn = names.indexOf('email');
  const key = (cells, column) => (column >= 0 ? (cells[column] || '').trim() : '');
  const ids = new Map();
  const emails = new Map();
  const records = [];
  const duplicates = [];
  for (const r of rows.filter((r) => !r.cells.every(blank))) {
    const id = key(r.cells, idColumn);
    const email = key(r.cells, emailColumn);
    const errors = [];
    if (id && ids.has(id)) errors.push({ column: 'id', detail: t('duplicateId', { line: ids.get(id), id }) });
    if (email && emails.has(email.toLowerCase())) errors.push({ column: 'email', detail: t('duplicateEmail', { line: emails.get(email.toLowerCase()), email }) });
    if (id && !ids.has(id)) ids.set(id, r.line);
    if (email && !emails.has(email.toLowerCase())) emails.set(email.toLowerCase(), r.line);
    if (errors.length) duplicates.push({ line: r.line, id: id || undefined, errors });
    else records.push(r);
  }
  return { header, records, duplicates };
}

// ---- Export ----

async function exportSection(filter) {
  const filterSelect = await customerFilterSelect(filter);
  const message = h('div');
  const button = h('button', { type: 'submit', class: 'primary' }, t('export'));
  const formEl = h('form', { class: 'form export-form', novalidate: true },
    h('p', { class: 'hint' }, t('exportHelp')),
    row(t('exportFilter'), filterSelect),
    h('div', { class: 'actions' }, button),
    message);
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    const status = h('p', { role: 'status' }, t('exporting', { pages: 0 }));
    show(message, status);
    try {
      const text = await allCsv('/customers/export', filterOf(filterSelect),
        (pages) => { status.textContent = t('exporting', { pages: number(pages) }); });
      const file = 'customers.csv';
      download(file, text);
      show(message, notice(t('exported', { file, count: number(readCsv(text).records.length) })));
    } catch (err) {
      show(message, problem(err));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { 'aria-labelledby': 'export-title' },
    h('h2', { id: 'export-title' }, t('exportTitle')),
    formEl);
}
