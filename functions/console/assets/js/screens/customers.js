// Customers: the list (search by email, filter by segment or by a cluster value, paged)
// and the customer form, built from the tenant's field definitions: one input per
// field, fitting its type; beside each cluster value, the rule that set it; below, the
// customer's sales of a year.

import { request, get, all, segment as part } from '../api.js';
import { money, date, dateTime, translator } from '../i18n.js';
import {
  h, show, header, table, paged, problem, row, checkRow, select, showErrors,
  confirmDialog, go, staleNotice, recordForm, localDateTime, fieldText, customerFilter,
} from '../ui.js';

const t = translator({
  en: {
    title: 'Customers',
    new: 'New customer',
    edit: 'Customer {name}',
    id: 'ID',
    idHint: 'Leave it empty to have one generated. It cannot be changed later.',
    email: 'Email',
    name: 'Name',
    firstName: 'First name',
    lastName: 'Last name',
    document: 'Document',
    documentHint: 'Tax id or other official document number.',
    phone: 'Phone',
    segment: 'Segment',
    inactive: '{name} (inactive)',
    unknownSegment: '{id} (deleted)',
    contact: 'Customer',
    fields: 'Fields',
    clusters: 'Clusters',
    filterEmail: 'Email',
    filterEmailHint: 'The whole address; upper and lower case are the same.',
    filterSegment: 'Segment',
    filterField: 'Cluster field',
    filterValue: 'Value',
    clearFilter: 'Clear filter',
    filters: 'Filter customers',
    empty: 'No customers yet. Create the first one with “New customer”.',
    emptyFiltered: 'No customer matches this filter.',
    decimalHint: 'With a dot for decimals, like 1234.50.',
    datetimeHint: 'In your time zone; stored in UTC.',
    setByRule: 'Set by rule {rule}, version {version}, on {at}. The rule may set it again after a change here.',
    ruleErrors: 'The last run of these rules failed:',
    ruleError: '{rule} (version {version}), {at}: {message}',
    updated: 'Version {version}, last changed on {at}.',
    stale: 'Someone else changed this customer since you opened it.',
    deleteQuestion: 'Delete customer {name}? Their sales stay in the reports.',
    sales: 'Sales',
    year: 'Year',
    salesEmpty: 'No sales in {year}.',
    saleDate: 'Date',
    reference: 'Reference',
    description: 'Description',
    amount: 'Amount',
    choose: 'Choose…',
    notSaved: 'Not saved.',
    checkMarked: 'Check the marked fields.',
    notInteger: 'Enter a whole number, like 42.',
    inexact: 'This number has more digits than the browser can show exactly; it stays as stored unless you change it.',
  },
  es: {
    title: 'Clientes',
    new: 'Nuevo cliente',
    edit: 'Cliente {name}',
    id: 'ID',
    idHint: 'Déjelo vacío para que se genere uno. No se puede cambiar después.',
    email: 'Correo electrónico',
    name: 'Nombre',
    firstName: 'Nombre',
    lastName: 'Apellidos',
    document: 'Documento',
    documentHint: 'NIF u otro número de documento oficial.',
    phone: 'Teléfono',
    segment: 'Segmento',
    inactive: '{name} (inactivo)',
    unknownSegment: '{id} (eliminado)',
    contact: 'Cliente',
    fields: 'Campos',
    clusters: 'Clústeres',
    filterEmail: 'Correo electrónico',
    filterEmailHint: 'La dirección completa; mayúsculas y minúsculas dan igual.',
    filterSegment: 'Segmento',
    filterField: 'Campo de clúster',
    filterValue: 'Valor',
    clearFilter: 'Quitar el filtro',
    filters: 'Filtrar clientes',
    empty: 'Todavía no hay clientes. Cree el primero con «Nuevo cliente».',
    emptyFiltered: 'Ningún cliente coincide con este filtro.',
    decimalHint: 'Con punto para los decimales, por ejemplo 1234.50.',
    datetimeHint: 'En su zona horaria; se guarda en UTC.',
    setByRule: 'Asignado por la regla {rule}, versión {version}, el {at}. La regla puede volver a asignarlo si lo cambia aquí.',
    ruleErrors: 'La última ejecución de estas reglas falló:',
    ruleError: '{rule} (versión {version}), {at}: {message}',
    updated: 'Versión {version}, último cambio el {at}.',
    stale: 'Otra persona cambió este cliente desde que lo abrió.',
    deleteQuestion: '¿Eliminar el cliente {name}? Sus ventas siguen en los informes.',
    sales: 'Ventas',
    year: 'Año',
    salesEmpty: 'No hay ventas en {year}.',
    saleDate: 'Fecha',
    reference: 'Referencia',
    description: 'Descripción',
    amount: 'Importe',
    choose: 'Elija…',
    notSaved: 'No se ha guardado.',
    checkMarked: 'Revise los campos marcados.',
    notInteger: 'Escriba un número entero, por ejemplo 42.',
    inexact: 'Este número tiene más cifras de las que el navegador puede mostrar con exactitud; se conserva tal como está si no lo cambia.',
  },
});

export async function render(main, { parts, query }) {
  if (parts[0] === 'new') return form(main, null);
  if (parts[0]) return form(main, parts[0]);
  return list(main, query);
}

/** The API filter of a list address (`#/customers?segment=ID`, `?email=...` or
 *  `?cluster.<field>=<value>`): what the list, and the export of "the current filter",
 *  send. The names are the API's, so the address and the request read the same. */
export function listQuery(query) {
  return customerFilter(new URLSearchParams(query));
}

/** The tenant's field definitions (one page: a tenant has at most 200). */
async function definitions() {
  return (await get('/fields')).items;
}

const customerHref = (id) => `#/customers/${part(id)}`;
const fullName = (c) => [c.first_name, c.last_name].filter(Boolean).join(' ');
/** How many cluster values the list shows as columns. */
const LIST_CLUSTERS = 3;

// ---- The list ----

async function list(main, query) {
  const [fields, segments] = await Promise.all([definitions(), all('/segments')]);
  const filter = listQuery(query);
  const segmentName = new Map(segments.map((s) => [s.id, s.name]));
  const clusters = fields.filter((f) => f.cluster);
  const columns = [
    { label: t('email'), cell: (c) => h('a', { href: customerHref(c.id) }, c.email) },
    { label: t('name'), cell: fullName },
    { label: t('id'), cell: (c) => h('code', {}, c.id) },
    { label: t('segment'), cell: (c) => (c.segment_id ? segmentName.get(c.segment_id) || c.segment_id : '') },
    ...clusters.slice(0, LIST_CLUSTERS).map((f) => ({
      label: f.label,
      cell: (c) => fieldText(f.type, c.fields[f.name]),
      numeric: f.type === 'integer',
    })),
  ];
  const filtered = Object.keys(filter).length > 0;
  show(main,
    header(t('title'), h('a', { class: 'button primary', href: '#/customers/new' }, t('new'))),
    filterForm(filter, segments, clusters),
    paged((cursor) => get('/customers', { ...filter, cursor, limit: 50 }),
      (items) => table(columns, items, { empty: filtered ? t('emptyFiltered') : t('empty') })));
}

/** Email, segment, or cluster field and value: the API takes one filter at a time, so
 *  choosing one clears the others. Searching puts the filter in the address. */
function filterForm(filter, segments, clusters) {
  const clusterKey = Object.keys(filter).find((k) => k.startsWith('cluster.'));
  const email = h('input', { type: 'email', value: filter.email || '', autocomplete: 'off' });
  const segmentSelect = select([
    ['', t('common.all')],
    ...byName(segments).map((s) => [s.id, s.status === 'active' ? s.name : t('inactive', { name: s.name })]),
  ], filter.segment || '');
  const field = select([['', t('common.none')], ...clusters.map((f) => [f.name, f.label])], clusterKey ? clusterKey.slice('cluster.'.length) : '');
  const valueRow = h('div', { class: 'filter-value' });
  let value = null;
  function drawValue(initial = '') {
    const def = clusters.find((f) => f.name === field.value);
    value = def ? clusterValueInput(def, initial) : null;
    show(valueRow, value ? row(t('filterValue'), value) : null);
  }
  drawValue(clusterKey ? filter[clusterKey] : '');

  email.addEventListener('input', () => { segmentSelect.value = ''; field.value = ''; drawValue(); });
  segmentSelect.addEventListener('change', () => { email.value = ''; field.value = ''; drawValue(); });
  field.addEventListener('change', () => { email.value = ''; segmentSelect.value = ''; drawValue(); });

  const formEl = h('form', { class: 'filters customer-filters', role: 'search', 'aria-label': t('filters') },
    row(t('filterEmail'), email, { hint: t('filterEmailHint') }),
    row(t('filterSegment'), segmentSelect),
    row(t('filterField'), field),
    valueRow,
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, t('action.search')),
      Object.keys(filter).length ? h('a', { class: 'button', href: '#/customers' }, t('clearFilter')) : null));
  formEl.addEventListener('submit', (e) => {
    e.preventDefault();
    if (email.value.trim()) go('customers', { email: email.value.trim() });
    else if (segmentSelect.value) go('customers', { segment: segmentSelect.value });
    else if (value && value.value !== '') go('customers', { [`cluster.${field.value}`]: value.value });
    else go('customers');
  });
  return formEl;
}

/** The value of a cluster filter: a select for enums and booleans, else typed. */
function clusterValueInput(def, initial) {
  if (def.type === 'enum') return select([['', t('choose')], ...def.values.map((v) => [v, v])], initial);
  if (def.type === 'boolean') return select([['', t('choose')], ['true', t('common.yes')], ['false', t('common.no')]], initial);
  return h('input', { type: def.type === 'integer' ? 'number' : 'text', step: def.type === 'integer' ? 1 : null, value: initial, autocomplete: 'off' });
}

const byName = (segments) => [...segments].sort((a, b) => a.name.localeCompare(b.name));

// ---- The form ----

/** The core properties every customer has: [property, label, input props, options]. */
const CORE = [
  ['email', 'email', { type: 'email', maxlength: 254, autocomplete: 'off' }, { required: true }],
  ['first_name', 'firstName', { type: 'text', maxlength: 100, autocomplete: 'off' }, {}],
  ['last_name', 'lastName', { type: 'text', maxlength: 100, autocomplete: 'off' }, {}],
  ['document', 'document', { type: 'text', maxlength: 64, autocomplete: 'off' }, { hint: 'documentHint' }],
  ['phone', 'phone', { type: 'tel', maxlength: 32, autocomplete: 'off' }, {}],
];

async function form(main, id) {
  const path = id ? `/customers/${part(id)}` : null;
  const [fields, segments, answer, provenance] = await Promise.all([
    definitions(),
    all('/segments'),
    id ? request('GET', path) : null,
    id ? get(`${path}/clusters`) : null,
  ]);
  const current = answer ? answer.body : { fields: defaults(fields) };
  const etag = answer ? answer.etag : null;

  // Every input is a control: its pointer (where the API's errors name it) and read(),
  // the JSON value it stands for (null for none).
  const controls = [];
  const add = (pointer, control) => { controls.push({ pointer, ...control }); return control.row; };

  const idInput = id ? null : h('input', { type: 'text', maxlength: 64, autocomplete: 'off' });
  const contact = h('fieldset', {}, h('legend', {}, t('contact')),
    idInput ? add('/id', textControl(idInput, t('id'), { pointer: '/id', hint: t('idHint') })) : null,
    CORE.map(([name, label, props, options]) => add(`/${name}`, textControl(
      h('input', { ...props, value: current[name] || '' }), t(label),
      { pointer: `/${name}`, required: options.required, hint: options.hint && t(options.hint) }))),
    add('/segment_id', segmentControl(segments, current.segment_id)));
  const sources = provenance?.clusters || {};
  const fieldRows = (cluster) => fields.filter((f) => f.cluster === cluster)
    .map((f) => add(`/fields/${f.name}`, fieldControl(f, current.fields[f.name], sources[f.name]?.source)));
  const plain = fieldRows(false);
  const clustered = fieldRows(true);
  const ruleErrors = provenance?.rule_errors?.length ? ruleErrorList(provenance.rule_errors) : null;

  // A change only sends what changed, so values the form cannot show exactly (integers
  // beyond JavaScript's precision, sub-second times) are left as stored.
  const initial = new Map(controls.map((c) => [c.pointer, JSON.stringify(c.read())]));

  const message = h('div');
  const remove = id
    ? h('button', { type: 'button', class: 'danger', onclick: () => removeCustomer(current, etag, message) }, t('action.delete'))
    : null;
  const formEl = recordForm({
    message,
    rows: [
      contact,
      plain.length ? h('fieldset', {}, h('legend', {}, t('fields')), plain) : null,
      clustered.length || ruleErrors ? h('fieldset', {}, h('legend', {}, t('clusters')), clustered, ruleErrors) : null,
    ],
    back: 'customers',
    remove,
    className: 'form customer-form',
    staleText: t('stale'),
    refuse: (form, err) => showErrors(form, emailConflict(err)),
    save: async (form) => {
      const unreadable = controls.filter((c) => c.unreadable?.());
      if (unreadable.length) {
        const errors = unreadable.map((c) => ({ pointer: c.pointer, detail: c.unreadable() }));
        showErrors(form, { problem: { title: t('notSaved'), detail: t('checkMarked'), errors } });
        return false;
      }
      if (!id) return request('POST', '/customers', { body: creation(controls) });
      const patch = changes(controls, initial, fields);
      return Object.keys(patch).length ? request('PATCH', path, { body: patch, ifMatch: etag }) : null;
    },
  });

  const title = id ? t('edit', { name: fullName(current) || current.email }) : t('new');
  show(main,
    header(title),
    id ? h('p', { class: 'hint' }, t('updated', { version: current.version, at: dateTime(current.updated_at) })) : null,
    formEl,
    id ? salesSection(path) : null);
  formEl.querySelector('input, select, textarea')?.focus();
}

/** A duplicate email is a 409 without a pointer; it belongs beside the email input. */
function emailConflict(err) {
  if (err.status !== 409 || err.problem?.errors || !/email/i.test(err.problem?.detail || '')) return err;
  return { ...err, problem: { ...err.problem, errors: [{ pointer: '/email', detail: err.problem.detail }] } };
}

/** A new customer's values: the field defaults, so the form shows what the API would
 *  give. */
function defaults(fields) {
  return Object.fromEntries(fields.filter((f) => f.default !== undefined).map((f) => [f.name, f.default]));
}

/** The body of POST /customers: every value that is set. */
function creation(controls) {
  const body = { fields: {} };
  for (const c of controls) {
    const value = c.read();
    if (value === null) continue;
    if (c.pointer.startsWith('/fields/')) body.fields[c.pointer.slice('/fields/'.length)] = value;
    else body[c.pointer.slice(1)] = value;
  }
  return body;
}

/** The merge patch of PATCH /customers/{id}: what changed (null removes a value), plus
 *  the required booleans the customer lacks, since an untouched checkbox still means
 *  "no". */
function changes(controls, initial, fields) {
  const patch = {};
  const required = new Set(fields.filter((f) => f.required).map((f) => `/fields/${f.name}`));
  for (const c of controls) {
    const value = c.read();
    const lacking = c.boolean && required.has(c.pointer) && !c.held;
    if (JSON.stringify(value) === initial.get(c.pointer) && !lacking) continue;
    if (c.pointer.startsWith('/fields/')) (patch.fields ||= {})[c.pointer.slice('/fields/'.length)] = value;
    else patch[c.pointer.slice(1)] = value;
  }
  return patch;
}

/** A text input: its trimmed text, null when empty. */
function textControl(input, label, options) {
  return { row: row(label, input, options), read: () => input.value.trim() || null };
}

/** Active segments, "(none)", and the customer's own segment even when it is inactive
 *  (its customers stay in it and can still be edited). */
function segmentControl(segments, currentId) {
  const offered = byName(segments).filter((s) => s.status === 'active' || s.id === currentId);
  const options = [['', t('common.none')], ...offered.map((s) => [s.id, s.status === 'active' ? s.name : t('inactive', { name: s.name })])];
  if (currentId && !segments.some((s) => s.id === currentId)) options.push([currentId, t('unknownSegment', { id: currentId })]);
  const input = select(options, currentId || '');
  return { row: row(t('segment'), input, { pointer: '/segment_id' }), read: () => input.value || null };
}

/** The input of a custom field, by its type, with the field's label and required mark;
 *  `source` is the rule that set a cluster value. */
function fieldControl(def, value, source) {
  const has = value !== undefined && value !== null;
  const hints = [];
  if (def.type === 'decimal') hints.push(t('decimalHint'));
  if (def.type === 'datetime') hints.push(t('datetimeHint'));
  if (def.type === 'integer' && has && !Number.isSafeInteger(value)) hints.push(t('inexact'));
  if (source) hints.push(t('setByRule', { rule: source.rule, version: source.version, at: dateTime(source.at) }));
  const options = { pointer: `/fields/${def.name}`, required: def.required, hint: hints.join(' ') || undefined };
  const control = (input, read, extra = {}) => ({ row: row(def.label, input, options), read, ...extra });
  switch (def.type) {
    case 'boolean': {
      const input = h('input', { type: 'checkbox', checked: value === true });
      // A checkbox always has an answer, so it is not marked required.
      return { row: checkRow(def.label, input, { ...options, required: false }), read: () => input.checked, boolean: true, held: has };
    }
    case 'enum': {
      const input = select([['', def.required ? t('choose') : t('common.none')], ...def.values.map((v) => [v, v])], has ? value : '');
      return control(input, () => input.value || null);
    }
    case 'integer': {
      const input = h('input', { type: 'number', step: 1, inputmode: 'numeric', value: has ? String(value) : '' });
      return control(input, () => integer(input.value), {
        // What the browser could not read as a number it reports as empty: say so
        // rather than remove the value.
        unreadable: () => (input.validity.badInput ? t('notInteger') : null),
      });
    }
    case 'decimal': {
      // Text, not a number input: decimals travel as strings and keep every digit.
      const input = h('input', { type: 'text', inputmode: 'decimal', value: has ? value : '', autocomplete: 'off' });
      return control(input, () => input.value.trim() || null);
    }
    case 'date': {
      const input = h('input', { type: 'date', value: has ? value : '' });
      return control(input, () => input.value || null);
    }
    case 'datetime': {
      const input = h('input', { type: 'datetime-local', step: 1, value: localDateTime(value) });
      return control(input, () => (input.value ? new Date(input.value).toISOString() : null));
    }
    case 'text': {
      const input = h('textarea', { rows: 3, maxlength: def.max_length || 10000 }, has ? value : '');
      return control(input, () => input.value || null);
    }
    default: {
      const type = def.type === 'email' ? 'email' : 'text';
      const input = h('input', { type, maxlength: def.max_length || 255, value: has ? value : '', autocomplete: 'off' });
      return control(input, () => input.value || null);
    }
  }
}

/** Digits become a JSON number, written as typed (JSON.rawJSON keeps integers beyond
 *  2^53 exact where the browser has it); anything else goes as typed, for the API to
 *  say what is wrong with it. */
function integer(text) {
  const value = text.trim();
  if (value === '') return null;
  if (!/^-?\d+$/.test(value)) return value;
  return JSON.rawJSON ? JSON.rawJSON(value) : Number(value);
}

function ruleErrorList(failures) {
  return h('div', { class: 'problem rule-errors' },
    h('p', {}, t('ruleErrors')),
    h('ul', {}, failures.map((f) => h('li', {},
      t('ruleError', { rule: f.rule, version: f.version, at: dateTime(f.at), message: f.message })))));
}

async function removeCustomer(current, etag, where) {
  const name = fullName(current) || current.email;
  if (!(await confirmDialog(t('deleteQuestion', { name }), t('action.delete')))) return;
  try {
    await request('DELETE', `/customers/${part(current.id)}`, { ifMatch: etag });
    go('customers');
  } catch (err) {
    if (err.status === 412) staleNotice(where, t('stale'));
    else show(where, problem(err));
  }
}

// ---- Sales ----

/** The customer's sales of one year (the current one first), in date order. */
function salesSection(path) {
  const thisYear = new Date().getFullYear();
  const years = Array.from({ length: 11 }, (_, i) => String(thisYear - i));
  const year = select(years.map((y) => [y, y]), String(thisYear));
  const box = h('div', { class: 'sales' });
  const columns = [
    { label: t('saleDate'), cell: (s) => date(s.date) },
    { label: t('reference'), cell: (s) => s.reference },
    { label: t('description'), cell: (s) => s.description || '' },
    { label: t('amount'), cell: (s) => money(s.amount, s.currency), numeric: true },
  ];
  function load() {
    const chosen = year.value;
    show(box, paged((cursor) => get(`${path}/sales`, { year: chosen, cursor, limit: 50 }),
      (items) => table(columns, items, { empty: t('salesEmpty', { year: chosen }) })));
  }
  year.addEventListener('change', load);
  load();
  return h('section', { 'aria-labelledby': 'customer-sales' },
    h('h2', { id: 'customer-sales' }, t('sales')),
    h('div', { class: 'filters' }, row(t('year'), year)),
    box);
}
