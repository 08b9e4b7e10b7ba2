// Rules: the tenant's rule modules (WebAssembly). The list, in evaluation order; the
// form to create one; and a rule's page: enable or disable it, its settings (outputs,
// priority, limits, the version that runs), its module versions (upload a .wasm), a test
// run on one customer, and backfills (a dry-run preview, a real run, live progress).
// Every write is conditional on the rule's ETag; each one changes the rule, so after a
// write the page is drawn again from the API.

import { request, get, segment, ApiProblem } from '../api.js';
import { number, dateTime, translator } from '../i18n.js';
import { h, show, header, table, problem, notice, row, select, showErrors, clearErrors, confirmDialog, go, uid, staleNotice, checkRow } from '../ui.js';

const t = translator({
  en: {
    title: 'Rules',
    new: 'New rule',
    ruleTitle: 'Rule {name}',
    orderHint: 'Rules run in this order: lowest priority first, then by name. Each one sees the customer as the earlier rules left it.',
    empty: 'No rules yet. Create the first one with “New rule”.',
    name: 'Name',
    nameHint: 'Lowercase letters, digits and _, starting with a letter. It cannot be changed later.',
    nameInvalid: 'Use lowercase letters, digits and _, starting with a letter (at most 64).',
    nameTaken: 'A rule with this name already exists.',
    checkForm: 'Check the form.',
    enabled: 'Enabled',
    priority: 'Priority',
    priorityHint: 'Lower numbers run first. Empty: 100.',
    outputs: 'Outputs',
    outputsLegend: 'Cluster fields the rule may set',
    outputsHint: 'Two rules cannot set the same field.',
    noClusterFields: 'There are no cluster fields yet. Define them first in “{screen}”.',
    segmentOutput: 'May set the customer’s segment',
    outputSegment: 'segment',
    description: 'Description',
    currentVersion: 'Current version',
    noModule: 'No module yet',
    versionN: 'Version {n}',
    versionPinned: 'Version {n} (pinned)',
    limits: 'Limits',
    fuel: 'Fuel (instructions)',
    memory: 'Memory (MiB)',
    timeout: 'Time limit (ms)',
    limitHint: 'Empty: {n} by default. At most {max}.',
    pinned: 'Version that runs',
    pinLatest: 'The latest (version {n})',
    pinLatestNone: 'The latest',
    pinVersion: 'Always version {n}',
    create: 'Create rule',
    saveSettings: 'Save settings',
    saved: 'Settings saved.',
    enable: 'Enable',
    disable: 'Disable',
    statusEnabled: 'Enabled',
    statusDisabled: 'Disabled',
    runsVersion: 'runs version {n}',
    enabledNotice: 'The rule is enabled: it now runs on every change of a customer.',
    disabledNotice: 'The rule is disabled: it no longer runs.',
    stale: 'Someone else changed this rule since you opened it.',
    deleteQuestion: 'Delete rule {name} and all its versions?',
    settings: 'Settings',
    versions: 'Module versions',
    module: 'WebAssembly module (.wasm)',
    moduleHint: 'A WASI command module (wasm32-wasi) that follows rule ABI v1; at most 4 MiB.',
    upload: 'Upload as a new version',
    chooseFile: 'Choose a .wasm file.',
    uploaded: 'Version {n} uploaded.',
    uploadRefused: 'The module was refused. The reason is below the file.',
    createdButRefused: 'The rule was created, but its module was refused. Fix the module and upload it again below.',
    noVersions: 'No module uploaded yet.',
    version: 'Version',
    uploadedAt: 'Uploaded',
    size: 'Size',
    sha: 'SHA-256',
    runsNow: 'runs',
    bytes: '{n} bytes',
    test: 'Test on a customer',
    testHint: 'Runs the rule on one customer and shows what it would do. Nothing is written.',
    customerId: 'Customer id',
    customerRequired: 'Enter a customer id.',
    testVersion: 'Version',
    versionThatRuns: 'The version that runs (version {n})',
    runTest: 'Run test',
    testOk: 'The rule ran and its answer passes every check.',
    testFailed: 'The rule failed on this customer: nothing would be written.',
    testInvalid: 'The rule ran, but its answer does not pass the checks: nothing would be written.',
    fuelUsed: 'Fuel used',
    time: 'Time',
    memoryUsed: 'Memory',
    ms: '{n} ms',
    mib: '{n} MiB',
    error: 'Error',
    checks: 'Checks that failed',
    changes: 'What it would change',
    field: 'Field',
    now: 'Now',
    after: 'After',
    nothingChanges: 'Nothing would change.',
    output: 'Output',
    logs: 'Log',
    noLogs: 'The rule wrote no log.',
    backfill: 'Backfill',
    backfillHint: 'A preview counts what a version would change and writes nothing. A backfill re-evaluates every customer with the version that runs and writes the results.',
    previewVersion: 'Version to preview',
    preview: 'Preview (dry run)',
    start: 'Start backfill',
    startQuestion: 'Re-evaluate every customer with version {n} and write the results?',
    enableFirst: 'Enable the rule to start a backfill; a preview works on a disabled rule too.',
    uploadFirst: 'Upload a module first.',
    previewOf: 'Preview of version {n}',
    backfillOf: 'Backfill with version {n}',
    progress: 'Progress',
    progressText: '{done} of {total} parts done',
    stateRunning: 'Running',
    stateDone: 'Finished',
    evaluated: 'Customers evaluated',
    changed: 'Changed',
    wouldChange: 'Would change',
    failed: 'Rule failed',
    moves: 'Customers by new value',
    movesPreview: 'Customers that would move, by new value',
    newValue: 'New value',
    customers: 'Customers',
    noMoves: 'No customer changed value.',
    noMovesPreview: 'No customer would change value.',
    stalled: 'This job has not moved for {seconds} seconds.',
    resume: 'Resume',
    jobs: 'Jobs',
    started: 'Started',
    kind: 'Kind',
    kindPreview: 'Preview',
    kindBackfill: 'Backfill',
    state: 'State',
    noJobs: 'No backfill or preview has run yet.',
    newestJobs: 'The {n} newest of {total} jobs.',
  },
  es: {
    title: 'Reglas',
    new: 'Nueva regla',
    ruleTitle: 'Regla {name}',
    orderHint: 'Las reglas se ejecutan en este orden: primero la de menor prioridad y, a igual prioridad, por nombre. Cada una ve al cliente tal como lo dejaron las anteriores.',
    empty: 'Todavía no hay reglas. Cree la primera con «Nueva regla».',
    name: 'Nombre',
    nameHint: 'Letras minúsculas, dígitos y _, empezando por una letra. No se puede cambiar después.',
    nameInvalid: 'Use letras minúsculas, dígitos y _, empezando por una letra (64 como máximo).',
    nameTaken: 'Ya existe una regla con este nombre.',
    checkForm: 'Revise el formulario.',
    enabled: 'Activada',
    priority: 'Prioridad',
    priorityHint: 'Los números más bajos se ejecutan antes. Vacío: 100.',
    outputs: 'Salidas',
    outputsLegend: 'Campos de clúster que la regla puede asignar',
    outputsHint: 'Dos reglas no pueden asignar el mismo campo.',
    noClusterFields: 'Todavía no hay campos de clúster. Defínalos primero en «{screen}».',
    segmentOutput: 'Puede asignar el segmento del cliente',
    outputSegment: 'segmento',
    description: 'Descripción',
    currentVersion: 'Versión actual',
    noModule: 'Sin módulo todavía',
    versionN: 'Versión {n}',
    versionPinned: 'Versión {n} (fijada)',
    limits: 'Límites',
    fuel: 'Combustible (instrucciones)',
    memory: 'Memoria (MiB)',
    timeout: 'Tiempo máximo (ms)',
    limitHint: 'Vacío: {n} por defecto. Como máximo, {max}.',
    pinned: 'Versión que se ejecuta',
    pinLatest: 'La más reciente (versión {n})',
    pinLatestNone: 'La más reciente',
    pinVersion: 'Siempre la versión {n}',
    create: 'Crear la regla',
    saveSettings: 'Guardar la configuración',
    saved: 'Configuración guardada.',
    enable: 'Activar',
    disable: 'Desactivar',
    statusEnabled: 'Activada',
    statusDisabled: 'Desactivada',
    runsVersion: 'ejecuta la versión {n}',
    enabledNotice: 'La regla está activada: ahora se ejecuta con cada cambio de un cliente.',
    disabledNotice: 'La regla está desactivada: ya no se ejecuta.',
    stale: 'Otra persona cambió esta regla desde que la abrió.',
    deleteQuestion: '¿Eliminar la regla {name} y todas sus versiones?',
    settings: 'Configuración',
    versions: 'Versiones del módulo',
    module: 'Módulo WebAssembly (.wasm)',
    moduleHint: 'Un módulo de comando WASI (wasm32-wasi) que cumpla la ABI v1 de reglas; 4 MiB como máximo.',
    upload: 'Subir como nueva versión',
    chooseFile: 'Elija un archivo .wasm.',
    uploaded: 'Versión {n} subida.',
    uploadRefused: 'El módulo fue rechazado. El motivo aparece debajo del archivo.',
    createdButRefused: 'La regla se creó, pero su módulo fue rechazado. Corrija el módulo y vuelva a subirlo más abajo.',
    noVersions: 'Todavía no se ha subido ningún módulo.',
    version: 'Versión',
    uploadedAt: 'Subida',
    size: 'Tamaño',
    sha: 'SHA-256',
    runsNow: 'se ejecuta',
    bytes: '{n} bytes',
    test: 'Probar con un cliente',
    testHint: 'Ejecuta la regla con un cliente y muestra lo que haría. No se escribe nada.',
    customerId: 'ID del cliente',
    customerRequired: 'Escriba el ID de un cliente.',
    testVersion: 'Versión',
    versionThatRuns: 'La versión que se ejecuta (versión {n})',
    runTest: 'Ejecutar la prueba',
    testOk: 'La regla se ejecutó y su respuesta supera todas las comprobaciones.',
    testFailed: 'La regla falló con este cliente: no se escribiría nada.',
    testInvalid: 'La regla se ejecutó, pero su respuesta no supera las comprobaciones: no se escribiría nada.',
    fuelUsed: 'Combustible usado',
    time: 'Tiempo',
    memoryUsed: 'Memoria',
    ms: '{n} ms',
    mib: '{n} MiB',
    error: 'Error',
    checks: 'Comprobaciones no superadas',
    changes: 'Qué cambiaría',
    field: 'Campo',
    now: 'Ahora',
    after: 'Después',
    nothingChanges: 'No cambiaría nada.',
    output: 'Salida',
    logs: 'Registro',
    noLogs: 'La regla no escribió nada en el registro.',
    backfill: 'Reevaluación de todos los clientes',
    backfillHint: 'Una vista previa cuenta lo que cambiaría una versión y no escribe nada. Una reevaluación vuelve a evaluar a todos los clientes con la versión que se ejecuta y guarda los resultados.',
    previewVersion: 'Versión de la vista previa',
    preview: 'Vista previa (simulación)',
    start: 'Iniciar la reevaluación',
    startQuestion: '¿Volver a evaluar a todos los clientes con la versión {n} y guardar los resultados?',
    enableFirst: 'Active la regla para iniciar una reevaluación; la vista previa también funciona con la regla desactivada.',
    uploadFirst: 'Suba primero un módulo.',
    previewOf: 'Vista previa de la versión {n}',
    backfillOf: 'Reevaluación con la versión {n}',
    progress: 'Progreso',
    progressText: '{done} de {total} partes terminadas',
    stateRunning: 'En curso',
    stateDone: 'Terminado',
    evaluated: 'Clientes evaluados',
    changed: 'Cambiados',
    wouldChange: 'Cambiarían',
    failed: 'La regla falló',
    moves: 'Clientes por valor nuevo',
    movesPreview: 'Clientes que cambiarían, por valor nuevo',
    newValue: 'Valor nuevo',
    customers: 'Clientes',
    noMoves: 'Ningún cliente cambió de valor.',
    noMovesPreview: 'Ningún cliente cambiaría de valor.',
    stalled: 'Este trabajo no avanza desde hace {seconds} segundos.',
    resume: 'Reanudar',
    jobs: 'Trabajos',
    started: 'Inicio',
    kind: 'Tipo',
    kindPreview: 'Vista previa',
    kindBackfill: 'Reevaluación',
    state: 'Estado',
    noJobs: 'Todavía no se ha ejecutado ninguna reevaluación ni vista previa.',
    newestJobs: 'Los {n} trabajos más recientes de {total}.',
  },
});

/** The engine's defaults and the tenant maxima of a rule's limits (rules/README.md). */
const LIMITS = [
  { key: 'fuel', label: 'fuel', default: 11_000_000, max: 100_000_000 },
  { key: 'memory_mib', label: 'memory', default: 16, max: 64 },
  { key: 'timeout_ms', label: 'timeout', default: 100, max: 1000 },
];
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const POLL_MS = 500;
/** Jobs listed under the backfill controls, newest first. */
const JOBS_SHOWN = 10;
/** A running job whose chains have not moved for this long is probably stalled. */
const STALL_MS = 10_000;

/** What to say on a rule's page once a write has drawn it again: { rule, text }, plus `err`
 *  when a module was refused (shown next to the upload input). */
let flash = null;

export async function render(main, { parts }) {
  if (parts[0] === 'new') return createForm(main);
  if (parts[0]) return rulePage(main, parts[0]);
  return list(main);
}

// ---- the list ----------------------------------------------------------------------

async function list(main) {
  const rules = (await get('/rules')).items;
  const columns = [
    { label: t('name'), cell: (r) => h('a', { href: `#/rules/${segment(r.name)}` }, r.name) },
    { label: t('enabled'), cell: (r) => (r.enabled ? t('common.yes') : t('common.no')) },
    { label: t('priority'), cell: (r) => number(r.priority), numeric: true },
    { label: t('outputs'), cell: outputsText },
    { label: t('currentVersion'), cell: versionText },
  ];
  show(main,
    header(t('title'), h('a', { class: 'button primary', href: '#/rules/new' }, t('new'))),
    h('p', { class: 'hint rule-order' }, t('orderHint')),
    table(columns, rules, { empty: t('empty') }));
}

function outputsText(rule) {
  const outputs = rule.segment_output ? [...rule.outputs, t('outputSegment')] : rule.outputs;
  return outputs.length ? outputs.join(', ') : t('common.none');
}

/** The version that runs: the pinned one, else the latest; none before the first upload. */
function activeVersion(rule) {
  if (!rule.latest_version) return null;
  return rule.pinned_version ?? rule.latest_version;
}

function versionText(rule) {
  const active = activeVersion(rule);
  if (!active) return t('noModule');
  return t(rule.pinned_version ? 'versionPinned' : 'versionN', { n: number(active) });
}

// ---- creating a rule ---------------------------------------------------------------

async function createForm(main) {
  const fields = await clusterFields();
  const name = h('input', { type: 'text', maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
  const settings = settingsInputs(null, fields, []);
  const file = moduleInput();
  const formEl = h('form', { class: 'form', novalidate: true },
    row(t('name'), name, { pointer: '/name', required: true, hint: t('nameHint') }),
    settings.rows,
    row(t('module'), file, { pointer: '/module', hint: t('moduleHint') }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, t('create')),
      h('a', { class: 'button', href: '#/rules' }, t('action.cancel'))));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    try {
      const wanted = name.value.trim();
      if (!NAME.test(wanted)) throw invalid('/name', t('nameInvalid'));
      // PUT creates or replaces: make sure it creates.
      if (await ruleExists(wanted)) throw invalid('/name', t('nameTaken'));
      const created = await request('PUT', rulePath(wanted), { body: settings.body() });
      if (file.files[0]) await uploadAfterCreate(wanted, file.files[0], created.etag);
      go('rules', wanted);
    } catch (err) {
      showErrors(formEl, err);
    }
  });
  show(main, header(t('new')), formEl);
  name.focus();
}

/** The rule exists by now, so a refused module is reported on the rule's own page. */
async function uploadAfterCreate(name, file, etag) {
  try {
    await uploadModule(rulePath(name), file, etag);
  } catch (err) {
    flash = { rule: name, err, text: t('createdButRefused') };
  }
}

async function ruleExists(name) {
  try {
    await request('GET', rulePath(name));
    return true;
  } catch (err) {
    if (err.status === 404) return false;
    throw err;
  }
}

/** A problem found before asking the API, shaped like the API's own 422. */
function invalid(pointer, detail) {
  return new ApiProblem(422, { title: t('checkForm'), detail, errors: [{ pointer, detail }] });
}

// ---- a rule's page -----------------------------------------------------------------

async function rulePage(main, name) {
  const path = rulePath(name);
  const [answer, versions, fields, jobs] = await Promise.all([
    request('GET', path), get(`${path}/versions`), clusterFields(), get(`${path}/backfill`),
  ]);
  const page = { path, rule: answer.body, etag: answer.etag, versions: versions.items, fields };
  page.versions.sort((a, b) => b.number - a.number);
  const message = h('div');
  const said = flash?.rule === name ? flash : null;
  flash = null;
  if (said?.text && !said.err) show(message, notice(said.text));
  show(main,
    header(t('ruleTitle', { name }), toggleButton(page, message), deleteButton(page, message)),
    message,
    h('p', { class: 'rule-state' }, ruleState(page.rule)),
    section(t('versions'), uploadForm(page, said?.err ? said : null), versionsTable(page)),
    section(t('test'), testForm(page)),
    section(t('backfill'), backfillPanel(page, jobs.items)),
    section(t('settings'), settingsForm(page)));
}

function rulePath(name) {
  return `/rules/${segment(name)}`;
}

function section(title, ...content) {
  const id = uid('section');
  return h('section', { class: 'rule-section', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

function ruleState(rule) {
  const active = activeVersion(rule);
  const state = t(rule.enabled ? 'statusEnabled' : 'statusDisabled');
  return active ? `${state} · ${t('runsVersion', { n: number(active) })}` : `${state} · ${t('noModule')}`;
}

/** Draws the page again from the API, with `said.text` in it. */
function reload(page, said) {
  flash = { rule: page.rule.name, ...said };
  redraw();
}

function redraw() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/** A conditional write of the rule; 412 says someone else changed it, with a reload. */
async function write(page, where, method, path, options) {
  try {
    return await request(method, path, { ...options, ifMatch: page.etag });
  } catch (err) {
    if (err.status === 412) staleNotice(where, t('stale'));
    else if (where.tagName === 'FORM') showErrors(where, err);
    else show(where, problem(err));
    return null;
  }
}

function toggleButton(page, message) {
  const enable = !page.rule.enabled;
  return h('button', {
    type: 'button',
    class: enable ? 'primary' : null,
    onclick: async () => {
      const done = await write(page, message, 'PATCH', page.path, { body: { enabled: enable } });
      if (done) reload(page, { text: t(enable ? 'enabledNotice' : 'disabledNotice') });
    },
  }, t(enable ? 'enable' : 'disable'));
}

function deleteButton(page, message) {
  return h('button', {
    type: 'button',
    class: 'danger',
    onclick: async () => {
      if (!(await confirmDialog(t('deleteQuestion', { name: page.rule.name }), t('action.delete')))) return;
      if (await write(page, message, 'DELETE', page.path)) go('rules');
    },
  }, t('action.delete'));
}

// ---- settings: outputs, priority, limits, the version that runs ---------------------

/** The tenant's cluster fields (the only fields a rule may set); /fields lists all. */
async function clusterFields() {
  return (await get('/fields')).items.filter((f) => f.cluster);
}

/** The inputs shared by the create form and the settings form, and the body they make. */
function settingsInputs(rule, fields, versions) {
  const description = h('textarea', { rows: 2, maxlength: 1000 }, rule?.description || '');
  const priority = h('input', { type: 'number', step: 1, value: rule ? String(rule.priority) : '', placeholder: '100' });
  const outputs = fields.map((field) => ({
    name: field.name,
    label: field.label && field.label !== field.name ? `${field.label} (${field.name})` : field.name,
    box: h('input', { type: 'checkbox', checked: Boolean(rule?.outputs.includes(field.name)) }),
  }));
  const segmentOutput = h('input', { type: 'checkbox', checked: Boolean(rule?.segment_output) });
  const limits = LIMITS.map((limit) => ({
    ...limit,
    input: h('input', { type: 'number', min: 1, max: limit.max, step: 1, value: rule?.limits?.[limit.key] ?? '' }),
  }));
  const pinned = rule && versions.length ? pinSelect(rule) : null;
  const rows = [
    row(t('description'), description, { pointer: '/description' }),
    row(t('priority'), priority, { pointer: '/priority', hint: t('priorityHint') }),
    outputsFieldset(outputs),
    checkRow(t('segmentOutput'), segmentOutput, { pointer: '/segment_output' }),
    limitsFieldset(limits),
    pinned ? row(t('pinned'), pinned, { pointer: '/pinned_version' }) : null,
  ];
  function body() {
    const chosen = outputs.filter((o) => o.box.checked);
    // The API names a bad output by its index in the array sent: point there.
    outputs.forEach((o) => delete o.box.dataset.pointer);
    chosen.forEach((o, i) => { o.box.dataset.pointer = `/outputs/${i}`; });
    return {
      description: description.value.trim() || null,
      priority: numberOrNull(priority.value),
      outputs: chosen.map((o) => o.name),
      segment_output: segmentOutput.checked,
      limits: Object.fromEntries(limits.map((l) => [l.key, numberOrNull(l.input.value)])),
      pinned_version: pinned?.value ? Number(pinned.value) : null,
    };
  }
  return { rows, body };
}

function numberOrNull(text) {
  return text.trim() === '' ? null : Number(text);
}

function outputsFieldset(outputs) {
  const hintId = uid('hint');
  const content = outputs.length
    ? outputs.map((o) => checkRow(o.label, o.box))
    : h('p', { class: 'hint' }, t('noClusterFields', { screen: t('nav.fields') }), ' ',
      h('a', { href: '#/fields' }, t('nav.fields')));
  return h('fieldset', { class: 'rule-outputs', 'aria-describedby': hintId },
    h('legend', {}, t('outputsLegend')),
    h('p', { class: 'hint', id: hintId }, t('outputsHint')),
    content);
}

/** Folded unless a limit is set: most rules keep the defaults. */
function limitsFieldset(limits) {
  return h('details', { class: 'rule-limits', open: limits.some((l) => l.input.value !== '') },
    h('summary', {}, t('limits')),
    limits.map((l) => row(t(l.label), l.input, {
      pointer: `/limits/${l.key}`,
      hint: t('limitHint', { n: number(l.default), max: number(l.max) }),
    })));
}

function pinSelect(rule) {
  const latest = rule.latest_version
    ? t('pinLatest', { n: number(rule.latest_version) })
    : t('pinLatestNone');
  const options = [['', latest]];
  for (let n = rule.latest_version; n >= 1; n -= 1) options.push([String(n), t('pinVersion', { n: number(n) })]);
  return select(options, rule.pinned_version ? String(rule.pinned_version) : '');
}

function settingsForm(page) {
  const settings = settingsInputs(page.rule, page.fields, page.versions);
  const formEl = h('form', { class: 'form', novalidate: true },
    settings.rows,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('saveSettings'))));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    // PUT replaces the whole configuration: keep `enabled` as it is.
    const body = { ...settings.body(), enabled: page.rule.enabled };
    if (await write(page, formEl, 'PUT', page.path, { body })) reload(page, { text: t('saved') });
  });
  return formEl;
}

// ---- module versions ---------------------------------------------------------------

function moduleInput() {
  return h('input', { type: 'file', accept: '.wasm,application/wasm' });
}

/** Sends the file's bytes as the rule's next version; the API validates and compiles it. */
function uploadModule(path, file, etag) {
  return request('PUT', `${path}/module`, { body: file, type: 'application/wasm', ifMatch: etag });
}

/** `refused`: a refusal carried over from the create form, shown next to the input. */
function uploadForm(page, refused) {
  const file = moduleInput();
  const formEl = h('form', { class: 'form rule-upload', novalidate: true },
    row(t('module'), file, { pointer: '/module', required: true, hint: t('moduleHint') }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('upload'))));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    if (!file.files[0]) {
      showErrors(formEl, invalid('/module', t('chooseFile')));
      return;
    }
    try {
      const answer = await uploadModule(page.path, file.files[0], page.etag);
      reload(page, { text: t('uploaded', { n: number(answer.body.number) }) });
    } catch (err) {
      if (err.status === 412) staleNotice(formEl, t('stale'));
      else showRefusal(formEl, err);
    }
  });
  if (refused) {
    showRefusal(formEl, refused.err);
    formEl.prepend(h('p', { class: 'problem', role: 'alert' }, refused.text));
  }
  return formEl;
}

/** The engine's reason goes next to the file input; the summary only says that the
 *  module was refused (its detail would repeat the reason). */
function showRefusal(formEl, err) {
  showErrors(formEl, err);
  const summary = formEl.querySelector('.form-problem');
  if (err.status === 422 && summary) summary.replaceChildren(h('strong', {}, t('uploadRefused')));
}

function versionsTable(page) {
  const active = activeVersion(page.rule);
  const columns = [
    {
      label: t('version'),
      cell: (v) => [number(v.number), v.number === active ? h('span', { class: 'badge' }, t('runsNow')) : null],
      numeric: true,
    },
    { label: t('uploadedAt'), cell: (v) => dateTime(v.created_at) },
    { label: t('size'), cell: (v) => t('bytes', { n: number(v.size) }), numeric: true },
    { label: t('sha'), cell: (v) => h('code', { class: 'hash' }, v.sha256) },
  ];
  return table(columns, page.versions, { empty: t('noVersions') });
}

/** [value, label] pairs: '' for the version that runs, then each version, newest first. */
function versionOptions(page) {
  const active = activeVersion(page.rule);
  return [
    ['', t('versionThatRuns', { n: number(active) })],
    ...page.versions.map((v) => [String(v.number), t('versionN', { n: number(v.number) })]),
  ];
}

// ---- test on a customer ------------------------------------------------------------

function testForm(page) {
  if (!page.versions.length) return h('p', { class: 'empty' }, t('uploadFirst'));
  const customer = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const version = select(versionOptions(page), '');
  const result = h('div', { class: 'rule-test-result', 'aria-live': 'polite' });
  const formEl = h('form', { class: 'form', novalidate: true },
    h('p', { class: 'hint' }, t('testHint')),
    row(t('customerId'), customer, { pointer: '/customer_id', required: true }),
    row(t('testVersion'), version, { pointer: '/version' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('runTest'))));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    result.replaceChildren();
    const id = customer.value.trim();
    if (!id) {
      showErrors(formEl, invalid('/customer_id', t('customerRequired')));
      return;
    }
    const body = { customer_id: id, version: version.value ? Number(version.value) : undefined };
    try {
      const report = (await request('POST', `${page.path}/test`, { body })).body;
      const before = await get(`/customers/${segment(id)}`);
      show(result, await testReport(report, before, page.fields));
    } catch (err) {
      showErrors(formEl, err);
    }
  });
  return [formEl, result];
}

async function testReport(report, before, fields) {
  const verdict = report.verdict || {};
  const outcome = report.ok ? notice(t('testOk'))
    : h('div', { class: 'problem', role: 'alert' }, t(report.error ? 'testFailed' : 'testInvalid'));
  return [
    outcome,
    facts([
      [t('version'), number(report.version)],
      [t('fuelUsed'), number(report.fuel_used)],
      [t('time'), t('ms', { n: number(report.duration_us / 1000, { maximumFractionDigits: 2 }) })],
      [t('memoryUsed'), t('mib', { n: number(report.memory_bytes / 1048576, { maximumFractionDigits: 2 }) })],
      report.error ? [t('error'), `${report.error.code}: ${report.error.message}`] : null,
    ]),
    verdict.valid ? await changesTable(verdict.assignment, before, fields) : failedChecks(verdict.errors),
    h('h3', {}, t('output')),
    h('pre', {}, report.output ? JSON.stringify(report.output, null, 2) : t('common.none')),
    h('h3', {}, t('logs')),
    h('pre', {}, report.logs || t('noLogs')),
  ];
}

/** A definition list of [term, value] pairs (null pairs are skipped). */
function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function failedChecks(errors = []) {
  if (!errors.length) return null;
  return [h('h3', {}, t('checks')), h('ul', {}, errors.map((e) => h('li', {}, h('code', {}, e.pointer), ' ', e.detail)))];
}

/** The customer's values now and as the rule would leave them. */
async function changesTable(assignment, before, fields) {
  const rows = Object.entries(assignment.clusters).map(([name, value]) => ({
    label: name,
    now: valueText(fields, name, before.fields?.[name]),
    after: valueText(fields, name, value),
  }));
  // `segment_id` absent: the segment stays; null: the customer leaves its segment.
  if (assignment.segment_id !== undefined) {
    rows.push({
      label: t('outputSegment'),
      now: await segmentName(before.segment_id),
      after: await segmentName(assignment.segment_id),
    });
  }
  const changing = rows.filter((r) => r.now !== r.after);
  const columns = [
    { label: t('field'), cell: (r) => r.label },
    { label: t('now'), cell: (r) => r.now },
    { label: t('after'), cell: (r) => h('strong', {}, r.after) },
  ];
  return [h('h3', {}, t('changes')), table(columns, changing, { empty: t('nothingChanges') })];
}

async function segmentName(id) {
  if (!id) return t('common.none');
  try {
    return (await get(`/segments/${segment(id)}`)).name;
  } catch {
    return id;
  }
}

/** A cluster value as people read it: Yes/No for booleans, numbers in the locale. */
function valueText(fields, name, value) {
  const field = fields.find((f) => f.name === name);
  if (value === null || value === undefined || value === 'null') return t('common.none');
  if (field?.type === 'boolean') return t(String(value) === 'true' ? 'common.yes' : 'common.no');
  if (['integer', 'decimal'].includes(field?.type)) return number(value);
  return String(value);
}

// ---- backfill ----------------------------------------------------------------------

function backfillPanel(page, jobs) {
  if (!page.versions.length) return h('p', { class: 'empty' }, t('uploadFirst'));
  const jobBox = h('div', { class: 'rule-job' });
  const history = h('div');
  const message = h('div');
  const refresh = () => drawHistory(page, history, watchJob);
  const watchJob = (job) => watch(page, jobBox, job, refresh);
  // A job just started: list it (as running) and follow it.
  const started = (job) => { refresh(); watchJob(job); };
  const controls = backfillControls(page, message, started);
  drawJobs(page, history, jobs, watchJob);
  // The newest job may still be running (enabling the rule or a new version starts one).
  if (jobs[0]?.state === 'running') watchJob(jobs[0]);
  return [h('p', { class: 'hint' }, t('backfillHint')), controls, message, jobBox, h('h3', {}, t('jobs')), history];
}

function backfillControls(page, message, started) {
  const version = select(versionOptions(page), '');
  const formEl = h('form', { class: 'toolbar', novalidate: true },
    row(t('previewVersion'), version, { pointer: '/version' }),
    h('button', { type: 'submit', class: 'primary' }, t('preview')),
    h('button', {
      type: 'button',
      disabled: !page.rule.enabled,
      'aria-describedby': page.rule.enabled ? null : 'rule-enable-first',
      onclick: () => startBackfill(page, formEl, message, started),
    }, t('start')));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { dry_run: true, version: version.value ? Number(version.value) : undefined };
    await startJob(page, formEl, message, body, started);
  });
  const why = page.rule.enabled ? null : h('p', { class: 'hint', id: 'rule-enable-first' }, t('enableFirst'));
  return [formEl, why];
}

async function startBackfill(page, formEl, message, started) {
  const n = number(activeVersion(page.rule));
  if (!(await confirmDialog(t('startQuestion', { n }), t('start')))) return;
  await startJob(page, formEl, message, { dry_run: false }, started);
}

async function startJob(page, formEl, message, body, started) {
  clearErrors(formEl);
  message.replaceChildren();
  try {
    started((await request('POST', `${page.path}/backfill`, { body })).body);
  } catch (err) {
    // A bad version goes next to its select; the summary below the toolbar.
    showErrors(formEl, err);
    show(message, formEl.querySelector('.form-problem'));
  }
}

async function drawHistory(page, history, watchJob) {
  try {
    drawJobs(page, history, (await get(`${page.path}/backfill`)).items, watchJob);
  } catch (err) {
    show(history, problem(err));
  }
}

function drawJobs(page, history, jobs, watchJob) {
  const columns = [
    // The start time is the button that shows the job: unique text for each row.
    { label: t('started'), cell: (j) => h('button', { type: 'button', class: 'link', onclick: () => watchJob(j) }, dateTime(j.created_at)) },
    { label: t('kind'), cell: (j) => t(j.dry_run ? 'kindPreview' : 'kindBackfill') },
    { label: t('version'), cell: (j) => number(j.version), numeric: true },
    { label: t('state'), cell: (j) => t(j.state === 'done' ? 'stateDone' : 'stateRunning') },
    { label: t('evaluated'), cell: (j) => number(j.evaluated), numeric: true },
    { label: t('changed'), cell: (j) => number(j.changed), numeric: true },
    { label: t('failed'), cell: (j) => number(j.failed), numeric: true },
  ];
  const shown = jobs.slice(0, JOBS_SHOWN);
  show(history,
    table(columns, shown, { empty: t('noJobs') }),
    jobs.length > shown.length ? h('p', { class: 'hint' }, t('newestJobs', { n: number(shown.length), total: number(jobs.length) })) : null);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Shows `job` in `box` and polls it until it is done, the page is left or another job
 *  is shown in its place; calls `finished` when a job it saw running is done. */
async function watch(page, box, job, finished) {
  const view = jobView(page, job);
  box.dataset.job = job.id;
  show(box, view.el);
  let current = job;
  while (current.state === 'running') {
    await sleep(POLL_MS);
    if (!box.isConnected || box.dataset.job !== job.id) return;
    try {
      current = await get(`${page.path}/backfill/${segment(job.id)}`);
    } catch (err) {
      show(box, problem(err));
      return;
    }
    view.update(current);
  }
  if (job.state === 'running') finished();
}

/** The job's heading, progress bar, counts, moves and (when stalled) a Resume button,
 *  built once and updated in place so focus and the screen reader's place survive. */
function jobView(page, job) {
  const barId = uid('progress');
  const bar = h('progress', { id: barId, max: job.chains.length || 1, value: 0 });
  const barText = h('span', { class: 'hint' });
  const state = h('p', { role: 'status' });
  const counts = h('div');
  const moves = h('div');
  const stalled = h('p', { class: 'hint' });
  const resume = h('button', { type: 'button', onclick: () => resumeJob(page, job, resumeBox) }, t('resume'));
  const resumeBox = h('div', { class: 'rule-resume', hidden: true }, stalled, resume);
  const el = h('div', { class: 'form' },
    h('h3', {}, t(job.dry_run ? 'previewOf' : 'backfillOf', { n: number(job.version) })),
    state,
    h('label', { for: barId }, t('progress')), ' ', bar, ' ', barText,
    counts, moves, resumeBox);
  const view = {
    el,
    update(current) {
      const done = current.chains.filter((c) => c.state === 'done').length;
      bar.value = current.state === 'done' ? bar.max : done;
      barText.textContent = t('progressText', { done: number(done), total: number(current.chains.length) });
      const stateText = t(current.state === 'done' ? 'stateDone' : 'stateRunning');
      if (state.textContent !== stateText) state.textContent = stateText;
      show(counts, facts([
        [t('evaluated'), number(current.evaluated)],
        [t(current.dry_run ? 'wouldChange' : 'changed'), number(current.changed)],
        [t('failed'), number(current.failed)],
      ]));
      show(moves, movesTable(page, current));
      const idle = Date.now() - Date.parse(current.updated_at);
      resumeBox.hidden = !(current.state === 'running' && idle > STALL_MS);
      stalled.textContent = t('stalled', { seconds: number(Math.round(idle / 1000)) });
    },
  };
  view.update(job);
  return view;
}

/** Re-drives a stalled job's chains; the polling then shows whether it moves again. */
async function resumeJob(page, job, where) {
  try {
    await request('POST', `${page.path}/backfill/${segment(job.id)}/resume`);
    where.hidden = true;
  } catch (err) {
    where.append(problem(err));
  }
}

/** How many customers moved (or would move) to each new value of each cluster field. */
function movesTable(page, job) {
  const rows = Object.entries(job.changes || {}).flatMap(([field, values]) =>
    Object.entries(values).map(([value, count]) => ({ field, value, count })));
  const columns = [
    { label: t('field'), cell: (r) => r.field },
    { label: t('newValue'), cell: (r) => valueText(page.fields, r.field, r.value) },
    { label: t('customers'), cell: (r) => number(r.count), numeric: true },
  ];
  return table(columns, rows, {
    caption: t(job.dry_run ? 'movesPreview' : 'moves'),
    empty: t(job.dry_run ? 'noMovesPreview' : 'noMoves'),
  });
}
