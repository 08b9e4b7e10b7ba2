// Manage Segments: the list (name, status, description, customers), filtered by
// status; the form to create or change one (Save & Close); delete, which the API
// refuses while customers are in the segment.

import { request, get, segment } from '../api.js';
import { number, translator } from '../i18n.js';
import { h, show, header, table, paged, problem, row, select, confirmDialog, go, staleNotice, recordForm } from '../ui.js';

const t = translator({
  en: {
    title: 'Segments',
    new: 'New segment',
    edit: 'Segment {name}',
    name: 'Name',
    status: 'Status',
    description: 'Description',
    customers: 'Customers',
    filter: 'Status',
    empty: 'No segments yet. Create the first one with “New segment”.',
    inUse: 'This segment cannot be deleted: {count} customers are in it.',
    stale: 'Someone else changed this segment since you opened it.',
    deleteQuestion: 'Delete segment {name}?',
  },
  es: {
    title: 'Segmentos',
    new: 'Nuevo segmento',
    edit: 'Segmento {name}',
    name: 'Nombre',
    status: 'Estado',
    description: 'Descripción',
    customers: 'Clientes',
    filter: 'Estado',
    empty: 'Todavía no hay segmentos. Cree el primero con «Nuevo segmento».',
    inUse: 'No se puede eliminar este segmento: tiene {count} clientes.',
    stale: 'Otra persona cambió este segmento desde que lo abrió.',
    deleteQuestion: '¿Eliminar el segmento {name}?',
  },
});

export async function render(main, { parts, query }) {
  if (parts[0] === 'new') return form(main, null);
  if (parts[0]) return form(main, parts[0]);
  return list(main, query);
}

const statuses = () => [['active', t('status.active')], ['inactive', t('status.inactive')]];

function list(main, query) {
  const status = query.get('status') || '';
  const filter = select([['', t('common.all')], ...statuses()], status, {
    id: 'segment-status-filter',
    onchange: (e) => go('segments', e.target.value ? { status: e.target.value } : {}),
  });
  const columns = [
    { label: t('name'), cell: (s) => h('a', { href: `#/segments/${segment(s.id)}` }, s.name) },
    { label: t('status'), cell: (s) => t(`status.${s.status}`) },
    { label: t('description'), cell: (s) => s.description || '' },
    { label: t('customers'), cell: (s) => number(s.customer_count), numeric: true },
  ];
  show(main,
    header(t('title'), h('a', { class: 'button primary', href: '#/segments/new' }, t('new'))),
    h('div', { class: 'filters' }, h('label', { for: filter.id }, t('filter')), filter),
    paged((cursor) => get('/segments', { status, cursor, limit: 50 }),
      (items) => table(columns, items, { empty: t('empty') })));
}

async function form(main, id) {
  let etag = null;
  let current = { name: '', status: 'active', description: '' };
  if (id) {
    const answer = await request('GET', `/segments/${segment(id)}`);
    current = answer.body;
    etag = answer.etag;
  }
  const name = h('input', { type: 'text', maxlength: 64, value: current.name, autocomplete: 'off' });
  const status = select(statuses(), current.status);
  const description = h('textarea', { rows: 3 }, current.description || '');
  const message = h('div');
  const remove = id
    ? h('button', { type: 'button', class: 'danger', onclick: () => removeSegment(current, etag, message) }, t('action.delete'))
    : null;
  const formEl = recordForm({
    message,
    rows: [
      row(t('name'), name, { pointer: '/name', required: true }),
      row(t('status'), status, { pointer: '/status' }),
      row(t('description'), description, { pointer: '/description' }),
    ],
    back: 'segments',
    remove,
    staleText: t('stale'),
    save: () => {
      const body = { name: name.value, status: status.value, description: description.value || null };
      return id
        ? request('PATCH', `/segments/${segment(id)}`, { body, ifMatch: etag })
        : request('POST', '/segments', { body });
    },
  });
  show(main, header(id ? t('edit', { name: current.name }) : t('new')), formEl);
  name.focus();
}

async function removeSegment(current, etag, where) {
  if (!(await confirmDialog(t('deleteQuestion', { name: current.name }), t('action.delete')))) return;
  try {
    await request('DELETE', `/segments/${segment(current.id)}`, { ifMatch: etag });
    go('segments');
  } catch (err) {
    if (err.status === 409 && err.problem.customer_count !== undefined) {
      show(where, h('div', { class: 'problem', role: 'alert' }, t('inUse', { count: number(err.problem.customer_count) })));
    } else if (err.status === 412) {
      staleNotice(where, t('stale'));
    } else {
      show(where, problem(err));
    }
  }
}
