// Fields and clusters (the CRM's Master Data): the list of the tenant's custom fields;
// the form to define or change one, with inputs that fit its type; delete, which the
// API refuses while customers hold a value of a cluster field or a rule sets it. A
// cluster field's page also counts its customers per value, and each value links to
// the paged list of its members: the customers a promotion for that cluster targets.

import { request, get, segment } from '../api.js';
import { number, translator } from '../i18n.js';
import {
  h, show, header, table, paged, problem, row, checkRow, select,
  confirmDialog, go, staleNotice, recordForm, localDateTime, fieldText,
} from '../ui.js';

const t = translator({
  en: {
    title: 'Fields and clusters',
    new: 'New field',
    edit: 'Field {name}',
    name: 'Name',
    nameHint: 'Used by the API, imports and rules: lowercase letters, digits and _, starting with a letter. It cannot be changed later.',
    label: 'Label',
    labelHint: 'What people see; the name when left empty.',
    type: 'Type',
    typeHintEdit: 'Only changes that keep every stored value valid are offered.',
    values: 'Allowed values',
    valuesHint: 'One value per line. Once saved, values can be added but not removed: customers may hold them.',
    maxLength: 'Maximum length',
    maxLengthHint: 'Characters, 1 to {limit}. Empty means {limit}.',
    maxLengthHintEdit: 'Characters, {min} to {limit}. It can only be raised.',
    required: 'Required',
    requiredHint: 'Customers cannot be saved without a value.',
    default: 'Default value',
    defaultHint: 'Given to customers that have no value.',
    decimalHint: 'With a dot for decimals, like 1234.50.',
    datetimeHint: 'In your time zone; stored in UTC.',
    cluster: 'Cluster field',
    clusterHint: 'Groups customers by their value (for promotions and reports). Only short text, whole number, yes / no and list of values fields can be clusters.',
    clusterHintEdit: 'Fixed when the field is created.',
    noDefault: '(no default)',
    customers: 'Customers',
    empty: 'No fields yet. Define the first one with “New field”.',
    inUse: 'This field cannot be deleted: {count} customers hold a value of it.',
    setByRule: 'This field cannot be deleted while a rule sets it; first remove it from the outputs of rule',
    stale: 'Someone else changed this field since you opened it.',
    deleteQuestion: 'Delete field {name}? Customers lose their values of it.',
    clusters: 'Customers per value',
    clustersNote: '{count} customers hold a value. Counts may lag a few seconds behind the latest changes.',
    value: 'Value',
    members: 'Customers with {label} = {value}',
    membersEmpty: 'No customer holds this value.',
    backToField: 'Back to field {name}',
    notCluster: 'Field {name} is not a cluster field.',
    id: 'ID',
    email: 'Email',
    customerName: 'Name',
    'type.string': 'Short text',
    'type.text': 'Long text',
    'type.integer': 'Whole number',
    'type.decimal': 'Decimal number',
    'type.boolean': 'Yes / no',
    'type.date': 'Date',
    'type.datetime': 'Date and time',
    'type.email': 'Email address',
    'type.enum': 'List of values',
  },
  es: {
    title: 'Campos y clústeres',
    new: 'Nuevo campo',
    edit: 'Campo {name}',
    name: 'Nombre',
    nameHint: 'Lo usan la API, las importaciones y las reglas: letras minúsculas, dígitos y _, empezando por una letra. No se puede cambiar después.',
    label: 'Etiqueta',
    labelHint: 'Lo que ven las personas; si se deja vacía, el nombre.',
    type: 'Tipo',
    typeHintEdit: 'Solo se ofrecen los cambios que mantienen válidos todos los valores guardados.',
    values: 'Valores permitidos',
    valuesHint: 'Un valor por línea. Una vez guardados, se pueden añadir valores pero no quitarlos: puede haber clientes que los tengan.',
    maxLength: 'Longitud máxima',
    maxLengthHint: 'Caracteres, de 1 a {limit}. Vacío significa {limit}.',
    maxLengthHintEdit: 'Caracteres, de {min} a {limit}. Solo se puede aumentar.',
    required: 'Obligatorio',
    requiredHint: 'No se pueden guardar clientes sin un valor.',
    default: 'Valor predeterminado',
    defaultHint: 'Se asigna a los clientes que no tienen valor.',
    decimalHint: 'Con punto para los decimales, por ejemplo 1234.50.',
    datetimeHint: 'En su zona horaria; se guarda en UTC.',
    cluster: 'Campo de clúster',
    clusterHint: 'Agrupa a los clientes por su valor (para promociones e informes). Solo pueden ser clústeres los campos de texto corto, número entero, sí / no y lista de valores.',
    clusterHintEdit: 'Se fija al crear el campo.',
    noDefault: '(sin valor predeterminado)',
    customers: 'Clientes',
    empty: 'Todavía no hay campos. Defina el primero con «Nuevo campo».',
    inUse: 'No se puede eliminar este campo: {count} clientes tienen un valor en él.',
    setByRule: 'No se puede eliminar este campo mientras lo asigne una regla; antes quítelo de las salidas de la regla',
    stale: 'Otra persona cambió este campo desde que lo abrió.',
    deleteQuestion: '¿Eliminar el campo {name}? Los clientes perderán sus valores.',
    clusters: 'Clientes por valor',
    clustersNote: '{count} clientes tienen un valor. Los recuentos pueden ir unos segundos por detrás de los últimos cambios.',
    value: 'Valor',
    members: 'Clientes con {label} = {value}',
    membersEmpty: 'Ningún cliente tiene este valor.',
    backToField: 'Volver al campo {name}',
    notCluster: 'El campo {name} no es un campo de clúster.',
    id: 'ID',
    email: 'Correo electrónico',
    customerName: 'Nombre',
    'type.string': 'Texto corto',
    'type.text': 'Texto largo',
    'type.integer': 'Número entero',
    'type.decimal': 'Número decimal',
    'type.boolean': 'Sí / no',
    'type.date': 'Fecha',
    'type.datetime': 'Fecha y hora',
    'type.email': 'Correo electrónico',
    'type.enum': 'Lista de valores',
  },
});

export async function render(main, { parts }) {
  if (parts[0] === 'new') return form(main, null);
  if (parts[0] && parts[1] === 'members') return members(main, parts[0], parts[2] ?? '');
  if (parts[0]) return form(main, parts[0]);
  return list(main);
}

// The API's rules about types, mirrored so the form only offers what it accepts (the
// API checks again and answers 409 or 422 otherwise).
const TYPES = ['string', 'text', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'email', 'enum'];
const CLUSTER_TYPES = ['string', 'integer', 'boolean', 'enum'];
const MAX_LENGTH = { string: 255, text: 10000 };
/** The types a stored field may change to: only widening ones keep stored values valid. */
function typesAfter(field) {
  if (field.cluster) return field.type === 'enum' ? ['enum', 'string'] : [field.type];
  const wider = { string: ['text'], integer: ['decimal'], email: ['string', 'text'], enum: ['string', 'text'] };
  return [field.type, ...(wider[field.type] || [])];
}

const fieldPath = (name) => `/fields/${segment(name)}`;
const fieldHref = (name) => `#/fields/${segment(name)}`;

async function list(main) {
  const fields = (await get('/fields')).items;
  const yesNo = (flag) => (flag ? t('common.yes') : t('common.no'));
  const columns = [
    { label: t('name'), cell: (f) => h('a', { href: fieldHref(f.name) }, f.name) },
    { label: t('label'), cell: (f) => (f.label !== f.name ? f.label : '') },
    { label: t('type'), cell: (f) => t(`type.${f.type}`) },
    { label: t('required'), cell: (f) => yesNo(f.required) },
    { label: t('cluster'), cell: (f) => yesNo(f.cluster) },
    { label: t('default'), cell: (f) => fieldText(f.type, f.default) },
    { label: t('customers'), cell: (f) => (f.cluster ? number(f.member_count) : ''), numeric: true },
  ];
  show(main,
    header(t('title'), h('a', { class: 'button primary', href: '#/fields/new' }, t('new'))),
    table(columns, fields, { empty: t('empty') }));
}

async function form(main, name) {
  let etag = null;
  let current = { name: '', label: '', type: 'string', values: [], required: false, default: null, cluster: false };
  if (name) {
    const answer = await request('GET', fieldPath(name));
    current = answer.body;
    etag = answer.etag;
  }
  const editing = Boolean(name);
  const inputs = formInputs(current, editing);
  const message = h('div');
  const remove = editing
    ? h('button', { type: 'button', class: 'danger', onclick: () => removeField(current, etag, message) }, t('action.delete'))
    : null;
  const formEl = recordForm({
    message,
    rows: inputs.rows,
    back: 'fields',
    remove,
    staleText: t('stale'),
    save: () => (editing
      ? request('PATCH', fieldPath(name), { body: inputs.body(), ifMatch: etag })
      : request('POST', '/fields', { body: inputs.body() })),
  });
  const clusters = current.cluster ? h('section', { 'aria-labelledby': 'cluster-counts' }) : null;
  show(main, header(editing ? t('edit', { name: current.name }) : t('new')), formEl, clusters);
  if (clusters) showClusterCounts(clusters, current);
  (editing ? inputs.label : inputs.name).focus();
}

/** The form's inputs for `current`, their rows, and how to read them back as the
 *  API's body. Inputs that only some types have are hidden for the others. */
function formInputs(current, editing) {
  const name = h('input', { type: 'text', maxlength: 64, value: current.name, autocomplete: 'off', spellcheck: 'false', readonly: editing });
  const label = h('input', { type: 'text', maxlength: 128, value: editing && current.label !== current.name ? current.label : '', autocomplete: 'off' });
  const type = select((editing ? typesAfter(current) : TYPES).map((v) => [v, t(`type.${v}`)]), current.type);
  const values = h('textarea', { rows: 5 }, (current.values || []).join('\n'));
  // A stored field's max length can only be raised (its current limit is the floor).
  const minLength = editing ? current.max_length ?? MAX_LENGTH[current.type] ?? 1 : 1;
  const maxLength = h('input', { type: 'number', min: minLength, step: 1, value: current.max_length ?? '', inputmode: 'numeric' });
  const required = h('input', { type: 'checkbox', checked: current.required });
  const cluster = h('input', { type: 'checkbox', checked: current.cluster, disabled: editing });
  const defaultBox = h('div');
  let defaultInput = null;
  // The default the person wants, kept while the type or the values change under it.
  let wanted = current.default ?? null;
  defaultBox.addEventListener('change', () => { wanted = defaultInput.read(); });

  const valuesRow = row(t('values'), values, { pointer: '/values', hint: t('valuesHint') });
  const lengthHint = (kind) => (editing && minLength > 1
    ? t('maxLengthHintEdit', { min: number(minLength), limit: number(MAX_LENGTH[kind]) })
    : t('maxLengthHint', { limit: number(MAX_LENGTH[kind]) }));
  const maxLengthRow = row(t('maxLength'), maxLength, { pointer: '/max_length', hint: lengthHint(current.type in MAX_LENGTH ? current.type : 'string') });
  const clusterRow = checkRow(t('cluster'), cluster, { pointer: '/cluster', hint: editing ? t('clusterHintEdit') : t('clusterHint') });

  const enumValues = () => values.value.split('\n').map((v) => v.trim()).filter(Boolean);
  // Redraws what depends on the type: which rows show, the max length's range, the
  // default's input (showing the wanted default when it fits the type), the cluster box.
  function typeChanged() {
    const kind = type.value;
    valuesRow.hidden = kind !== 'enum';
    maxLengthRow.hidden = !(kind in MAX_LENGTH);
    if (kind in MAX_LENGTH) {
      maxLength.max = MAX_LENGTH[kind];
      maxLengthRow.querySelector('.hint').textContent = lengthHint(kind);
    }
    defaultInput = defaultEditor(kind, enumValues(), wanted);
    show(defaultBox, defaultInput.row);
    if (!editing) {
      const possible = CLUSTER_TYPES.includes(kind);
      cluster.disabled = !possible;
      if (!possible) cluster.checked = false;
    }
  }
  type.addEventListener('change', typeChanged);
  // The default of a list of values picks among the values typed above.
  values.addEventListener('change', () => { if (type.value === 'enum') typeChanged(); });
  typeChanged();

  const rows = [
    row(t('name'), name, { pointer: '/name', required: !editing, hint: t('nameHint') }),
    row(t('label'), label, { pointer: '/label', hint: t('labelHint') }),
    row(t('type'), type, { pointer: '/type', hint: editing ? t('typeHintEdit') : null }),
    valuesRow,
    maxLengthRow,
    checkRow(t('required'), required, { pointer: '/required', hint: t('requiredHint') }),
    defaultBox,
    clusterRow,
  ];
  // Fields that do not apply to the type are sent as null: in a merge patch that
  // removes them, and on create null is the same as leaving them out.
  const body = () => {
    const kind = type.value;
    return {
      name: name.value.trim(),
      label: label.value.trim() || null,
      type: kind,
      values: kind === 'enum' ? enumValues() : null,
      max_length: kind in MAX_LENGTH ? integerOrText(maxLength.value) : null,
      required: required.checked,
      default: defaultInput.read(),
      cluster: cluster.checked,
    };
  };
  return { rows, body, name, label };
}

/** A number typed as digits becomes a JSON number; anything else goes as typed, for the
 *  API to say what is wrong with it. */
function integerOrText(text) {
  const value = text.trim();
  if (value === '') return null;
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

/** The input of a default value for `type`: { row, read() }, `read` giving the JSON
 *  value the API takes (null for none). `value` is what to show first. */
function defaultEditor(type, enumValues, value) {
  const options = { pointer: '/default', hint: t('defaultHint') };
  const none = ['', t('noDefault')];
  const editor = (input, read, hint) => ({ row: row(t('default'), input, { ...options, hint: hint || options.hint }), read });
  switch (type) {
    case 'boolean': {
      const input = select([none, ['true', t('common.yes')], ['false', t('common.no')]], value === true || value === false ? String(value) : '');
      return editor(input, () => (input.value === '' ? null : input.value === 'true'));
    }
    case 'enum': {
      // A default no longer among the values stays offered, for the API to refuse it
      // next to this input rather than the form dropping it unseen.
      const listed = typeof value === 'string' && value && !enumValues.includes(value) ? [...enumValues, value] : enumValues;
      const input = select([none, ...listed.map((v) => [v, v])], typeof value === 'string' ? value : '');
      return editor(input, () => input.value || null);
    }
    case 'integer': {
      const input = h('input', { type: 'number', step: 1, inputmode: 'numeric', value: Number.isInteger(value) ? String(value) : '' });
      return editor(input, () => integerOrText(input.value));
    }
    case 'decimal': {
      // Text, not a number input: decimals travel as strings and keep every digit.
      const input = h('input', { type: 'text', inputmode: 'decimal', value: value === null || value === undefined ? '' : String(value), autocomplete: 'off' });
      return editor(input, () => input.value.trim() || null, `${t('defaultHint')} ${t('decimalHint')}`);
    }
    case 'date': {
      const input = h('input', { type: 'date', value: /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : '' });
      return editor(input, () => input.value || null);
    }
    case 'datetime': {
      const input = h('input', { type: 'datetime-local', step: 1, value: localDateTime(value) });
      return editor(input, () => (input.value ? new Date(input.value).toISOString() : null), `${t('defaultHint')} ${t('datetimeHint')}`);
    }
    case 'text': {
      const input = h('textarea', { rows: 3 }, typeof value === 'string' ? value : '');
      return editor(input, () => input.value || null);
    }
    default: {
      const input = h('input', { type: type === 'email' ? 'email' : 'text', value: typeof value === 'string' ? value : '', autocomplete: 'off' });
      return editor(input, () => input.value.trim() || null);
    }
  }
}

async function removeField(current, etag, where) {
  if (!(await confirmDialog(t('deleteQuestion', { name: current.name }), t('action.delete')))) return;
  try {
    await request('DELETE', fieldPath(current.name), { ifMatch: etag });
    go('fields');
  } catch (err) {
    if (err.status === 409 && err.problem.customer_count !== undefined) {
      show(where, h('div', { class: 'problem', role: 'alert' }, t('inUse', { count: number(err.problem.customer_count) })));
    } else if (err.status === 412) {
      staleNotice(where, t('stale'));
    } else if (err.status === 409) {
      show(where, await ruleRefusal(current.name, err));
    } else {
      show(where, problem(err));
    }
  }
}

/** A 409 without a count: a rule sets the field. Names the rule with a link to it when
 *  it can be found, else shows the API's own words. */
async function ruleRefusal(name, err) {
  const rules = await get('/rules').then((answer) => answer.items, () => []);
  const rule = rules.find((r) => (r.outputs || []).includes(name));
  if (!rule) return problem(err);
  return h('div', { class: 'problem', role: 'alert' },
    t('setByRule'), ' ', h('a', { href: `#/rules/${segment(rule.name)}` }, rule.name));
}

/** Under a cluster field's form: its customers per value, each linking to its members.
 *  An enum's or a boolean's values nobody holds yet are listed with 0. */
async function showClusterCounts(section, field) {
  const heading = h('h2', { id: 'cluster-counts' }, t('clusters'));
  show(section, heading, h('p', { role: 'status' }, t('common.loading')));
  try {
    const { items } = await get('/clusters');
    const cluster = items.find((c) => c.field === field.name) || { member_count: 0, values: [] };
    const counted = cluster.values.map((v) => v.value);
    const possible = field.type === 'boolean' ? [true, false] : field.type === 'enum' ? field.values : [];
    const rows = [...cluster.values, ...possible.filter((v) => !counted.includes(v)).map((value) => ({ value, count: 0 }))];
    const columns = [
      { label: t('value'), cell: (v) => h('a', { href: `${fieldHref(field.name)}/members/${segment(String(v.value))}` }, fieldText(field.type, v.value)) },
      { label: t('customers'), cell: (v) => number(v.count), numeric: true },
    ];
    show(section, heading,
      h('p', {}, t('clustersNote', { count: number(cluster.member_count) })),
      table(columns, rows, { empty: t('membersEmpty') }));
  } catch (err) {
    show(section, heading, problem(err));
  }
}

/** The customers holding one value of a cluster field, page by page. `raw` is the
 *  value as the address (and the API's `?value=`) spell it. */
async function members(main, name, raw) {
  const field = await get(fieldPath(name));
  const back = h('a', { class: 'button', href: fieldHref(name) }, t('backToField', { name }));
  if (!field.cluster) {
    show(main, header(t('edit', { name })), h('p', { role: 'alert' }, t('notCluster', { name })), back);
    return;
  }
  const typed = { boolean: raw === 'true', integer: Number(raw) }[field.type] ?? raw;
  const fullName = (c) => [c.first_name, c.last_name].filter(Boolean).join(' ');
  const columns = [
    { label: t('id'), cell: (c) => h('a', { href: `#/customers/${segment(c.id)}` }, c.id) },
    { label: t('email'), cell: (c) => c.email },
    { label: t('customerName'), cell: (c) => fullName(c) },
  ];
  show(main,
    header(t('members', { label: field.label, value: fieldText(field.type, typed) }), back),
    paged((cursor) => get(`/clusters/${segment(name)}/members`, { value: raw, cursor, limit: 50 }),
      (items) => table(columns, items, { empty: t('membersEmpty') })));
}
