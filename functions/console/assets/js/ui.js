// Small DOM helpers every screen uses: element building, tables, paging, forms,
// problems next to their inputs, and a confirmation dialog.

import { t, number, date, dateTime } from './i18n.js';
import { all, get } from './api.js';

/** Builds an element: h('button', { class: 'primary', onclick }, 'Save'). Props that
 *  start with `on` become listeners; `null`, `false` and `undefined` children are skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' || key === 'checked' || key === 'selected') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces what `root` shows. */
export function show(root, ...children) {
  root.replaceChildren();
  append(root, children);
}

let ids = 0;
/** A fresh id for label/input pairs. */
export function uid(prefix = 'id') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** The screen's heading and actions. */
export function header(title, ...actions) {
  document.title = `${title} · ${t('app.name')}`;
  return h('div', { class: 'screen-head' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

/** A table: columns are { label, cell: row => node or text, numeric }. */
export function table(columns, rows, { empty = t('table.empty'), caption } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', {},
      columns.map((c) => h('td', { class: c.numeric ? 'num' : null }, c.cell(row)))))));
}

/** Cursor paging over a listing that answers { items, next_cursor }. `load(cursor)` returns
 *  the page; `draw(items)` returns what to show. Keeps the cursors of earlier pages for
 *  "Previous". Returns the element that holds the rows and the buttons. */
export function paged(load, draw) {
  // Until the first page arrives (a listing can take a few seconds), say so.
  const box = h('div', { class: 'paged' }, h('p', { class: 'empty', role: 'status' }, t('common.loading')));
  const cursors = [undefined];
  async function go(index) {
    // One page at a time: a second click while a page loads would page from the wrong one.
    box.querySelectorAll('.pager button').forEach((button) => { button.disabled = true; });
    box.setAttribute('aria-busy', 'true');
    try {
      const page = await load(cursors[index]);
      // The API names the next page's cursor `next_cursor`.
      const following = page.next_cursor ?? page.next;
      cursors.length = index + 1;
      if (following) cursors.push(following);
      const prev = h('button', { type: 'button', disabled: index === 0, onclick: () => go(index - 1) }, t('page.previous'));
      const next = h('button', { type: 'button', disabled: !following, onclick: () => go(index + 1) }, t('page.next'));
      show(box, draw(page.items), h('nav', { class: 'pager', 'aria-label': t('page.label') }, prev, h('span', {}, t('page.number', { n: index + 1 })), next));
    } catch (err) {
      show(box, problem(err));
    } finally {
      box.removeAttribute('aria-busy');
    }
  }
  go(0);
  return box;
}

/** An alert that says what went wrong (an ApiProblem or any error). */
export function problem(err) {
  const title = err?.problem?.title || t('error.title');
  const detail = err?.problem?.detail || err?.message || String(err);
  return h('div', { class: 'problem', role: 'alert' }, h('strong', {}, title), ' ', detail);
}

/** A status line for success messages, announced to screen readers. */
export function notice(text) {
  return h('p', { class: 'notice', role: 'status' }, text);
}

/** A labelled form row: the input gets an id, a `data-pointer` for server errors, and
 *  the hint and error text are linked with aria-describedby. */
export function row(label, input, { pointer, hint, required } = {}) {
  const id = input.id || uid('input');
  input.id = id;
  if (pointer) input.dataset.pointer = pointer;
  if (required) input.required = true;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'row' },
    h('label', { for: id }, label, required ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null),
    input, hintEl);
}

/** Shows a problem's `errors` (JSON pointers) next to the inputs that carry the same
 *  `data-pointer`; the rest, and the detail, in an alert at the top of the form.
 *  Returns true when at least one error found its input. */
export function showErrors(form, err) {
  clearErrors(form);
  const errors = err?.problem?.errors || [];
  const unplaced = [];
  let first = null;
  for (const { pointer, detail } of errors) {
    const input = form.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
    if (!input) {
      unplaced.push(`${pointer}: ${detail}`);
      continue;
    }
    const message = h('p', { class: 'field-error', id: `${input.id}-error` }, detail);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), message.id].filter(Boolean).join(' '));
    input.closest('.row')?.append(message);
    first = first || input;
  }
  const summary = problem(err);
  if (unplaced.length) summary.append(h('ul', {}, unplaced.map((u) => h('li', {}, u))));
  summary.classList.add('form-problem');
  summary.tabIndex = -1;
  form.prepend(summary);
  // The first input in error in the form's order, else the summary, takes the focus.
  (form.querySelector('[aria-invalid="true"]') || summary).focus();
  return first !== null;
}

/** The form of one record: `message` (where notices go) and `rows`, then Save & Close,
 *  Cancel (back to the list `#/<back>`) and `remove` (a Delete button, or null). On
 *  submit: old errors cleared, `save()` awaited, back to the list, unless `save`
 *  returns false. A 412 says that someone else changed the record (`staleText`) and
 *  offers a reload; any other problem goes next to its inputs (`refuse`). */
export function recordForm({ message, rows, back, remove, save, staleText, refuse = showErrors, className = 'form' }) {
  const formEl = h('form', { class: className, novalidate: true },
    message,
    rows,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, t('action.save')),
      h('a', { class: 'button', href: `#/${back}` }, t('action.cancel')),
      remove));
  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    show(message);
    try {
      if ((await save(formEl)) !== false) go(back);
    } catch (err) {
      if (err.status === 412) staleNotice(message, staleText);
      else refuse(formEl, err);
    }
  });
  return formEl;
}

/** Removes what showErrors added. */
export function clearErrors(form) {
  form.querySelectorAll('.field-error, .form-problem').forEach((el) => el.remove());
  form.querySelectorAll('[aria-invalid]').forEach((input) => {
    input.removeAttribute('aria-invalid');
    const rest = (input.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.endsWith('-error'));
    if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
    else input.removeAttribute('aria-describedby');
  });
}

/** A modal question; resolves true when confirmed. */
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-label': t('dialog.confirm') },
      h('p', {}, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => close(false) }, t('action.cancel')),
        h('button', { type: 'button', class: 'danger', onclick: () => close(true) }, confirmLabel)));
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener('cancel', () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A select over [value, label] pairs. */
export function select(options, value, props = {}) {
  return h('select', props, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

/** Saves `text` as a file download. */
export function download(name, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/** Goes to another screen: go('customers', id) or go('customers', { segment: 'x' }). */
export function go(...parts) {
  const query = typeof parts.at(-1) === 'object' ? new URLSearchParams(parts.pop()).toString() : '';
  location.hash = `#/${parts.map(encodeURIComponent).join('/')}${query ? `?${query}` : ''}`;
}

/** The one customer filter a listing, the export and the annual report take, from an
 *  address query: `segment`, `email` or one `cluster.<field>`, as the API names them. */
export function customerFilter(query) {
  for (const [key, value] of query) {
    if (key === 'segment' || key === 'email' || key.startsWith('cluster.')) return { [key]: value };
  }
  return {};
}

/** A select of that filter: everyone, a segment, or a cluster value (from /segments and
 *  /clusters). Each option's value is the filter's query text (`segment=ID`,
 *  `cluster.tier=gold`); `filterOf(select)` turns the choice back into a query object.
 *  A `current` filter no option names (an email) is kept as an option of its own. */
export async function customerFilterSelect(current, props = {}) {
  const [segments, clusters] = await Promise.all([all('/segments'), get('/clusters')]);
  const chosen = new URLSearchParams(current).toString();
  const option = (query, label) => {
    const value = new URLSearchParams(query).toString();
    return h('option', { value, selected: value === chosen }, label);
  };
  const valueLabel = (v) => (v === true ? t('common.yes') : v === false ? t('common.no') : String(v));
  const groups = [
    segments.length ? h('optgroup', { label: t('filter.segments') },
      segments.map((s) => option({ segment: s.id }, t('filter.segment', { name: s.name })))) : null,
    // "Tier: gold" rather than "gold": a closed select does not show its group.
    clusters.items.filter((c) => c.values.length).map((c) => h('optgroup', { label: c.label || c.field },
      c.values.map((v) => option({ [`cluster.${c.field}`]: String(v.value) }, `${c.label || c.field}: ${valueLabel(v.value)}`)))),
  ];
  const el = h('select', props, option({}, t('filter.everyone')), groups);
  if (el.value !== chosen) el.append(option(current, Object.entries(current).map(([k, v]) => `${k}: ${v}`).join(', ')));
  return el;
}

/** The query object a customerFilterSelect stands for. */
export function filterOf(select) {
  return Object.fromEntries(new URLSearchParams(select.value));
}

/** Says that someone else changed what a form shows since it was opened (a 412 on a
 *  conditional write), with a button that reloads the screen; focus goes to it. */
export function staleNotice(where, text) {
  const reload = h('button', { type: 'button', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, t('action.reload'));
  show(where, h('div', { class: 'problem', role: 'alert' }, text, ' ', reload));
  reload.focus();
}

/** A checkbox row: the box first, then its label, then the hint below both. */
export function checkRow(label, input, options) {
  const el = row(label, input, options);
  el.classList.add('check');
  el.prepend(input);
  return el;
}

/** An RFC 3339 instant as a datetime-local input's value, in the browser's time zone. */
export function localDateTime(value) {
  const instant = typeof value === 'string' ? new Date(value) : null;
  if (!instant || Number.isNaN(instant.getTime())) return '';
  const local = new Date(instant.getTime() - instant.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}

/** A custom field's value as people read it, by the field's type. */
export function fieldText(type, value) {
  if (value === null || value === undefined) return '';
  switch (type) {
    case 'boolean': return value ? t('common.yes') : t('common.no');
    case 'integer':
    case 'decimal': return number(value);
    case 'date': return date(value);
    case 'datetime': return dateTime(value);
    default: return String(value);
  }
}
