// Annual Sales Summary per Customer: one row per customer with sales in the year (its
// segment, the twelve monthly totals, the year total and the orders), highest total
// first, in one currency, for everyone or for one segment or cluster value. The address
// holds the choice (#/report?year=2026&currency=EUR&segment=ID), so a report can be
// linked and reloaded. "Download CSV" saves every page in the API's own CSV form.

import { get, allCsv, segment } from '../api.js';
import { money, number, translator } from '../i18n.js';
import {
  h, show, header, table, paged, problem, notice, row, showErrors, download, go,
  customerFilter, customerFilterSelect, filterOf,
} from '../ui.js';

const t = translator({
  en: {
    title: 'Annual sales summary per customer',
    year: 'Year',
    currency: 'Currency',
    currencyHint: 'Three letters, e.g. EUR. Leave it empty when the year’s sales are all in one currency.',
    customers: 'Customers',
    show: 'Show report',
    caption: 'Sales of {year} in {currency}, highest total first',
    empty: 'No sales were recorded in {year} for these customers.',
    customer: 'Customer',
    email: 'Email',
    segment: 'Segment',
    total: 'Total',
    orders: 'Orders',
    deleted: 'Deleted customer {id}',
    downloading: 'Preparing the CSV file…',
    downloaded: '{file} is downloaded.',
    m1: 'Jan', m2: 'Feb', m3: 'Mar', m4: 'Apr', m5: 'May', m6: 'Jun',
    m7: 'Jul', m8: 'Aug', m9: 'Sep', m10: 'Oct', m11: 'Nov', m12: 'Dec',
  },
  es: {
    title: 'Resumen anual de ventas por cliente',
    year: 'Año',
    currency: 'Moneda',
    currencyHint: 'Tres letras, p. ej. EUR. Déjela vacía si todas las ventas del año están en una sola moneda.',
    customers: 'Clientes',
    show: 'Ver informe',
    caption: 'Ventas de {year} en {currency}, de mayor a menor total',
    empty: 'No se registraron ventas en {year} para estos clientes.',
    customer: 'Cliente',
    email: 'Correo electrónico',
    segment: 'Segmento',
    total: 'Total',
    orders: 'Pedidos',
    deleted: 'Cliente eliminado {id}',
    downloading: 'Preparando el archivo CSV…',
    downloaded: 'Se ha descargado {file}.',
    m1: 'ene', m2: 'feb', m3: 'mar', m4: 'abr', m5: 'may', m6: 'jun',
    m7: 'jul', m8: 'ago', m9: 'sept', m10: 'oct', m11: 'nov', m12: 'dic',
  },
});

const PAGE_SIZE = 50;

export async function render(main, { query }) {
  const year = Number(query.get('year')) || new Date().getFullYear();
  const currency = (query.get('currency') || '').trim().toUpperCase();
  const filter = customerFilter(query);
  delete filter.email; // the report selects by segment or cluster, never by email
  const asked = { year, currency, ...filter };

  const formEl = await reportForm(year, currency, filter);
  const message = h('div');
  const downloadButton = h('button', { type: 'button', onclick: () => downloadCsv(asked, downloadButton, message) }, t('action.download'));
  const head = header(t('title'), downloadButton);

  // The first page is read before the table is drawn, so that a problem with the
  // question (a year with sales in several currencies) goes next to its input.
  let first;
  try {
    first = await get('/reports/annual-sales', { ...asked, limit: PAGE_SIZE });
  } catch (err) {
    show(main, head, formEl, message);
    showErrors(formEl, err);
    return;
  }
  const shown = first.currency;
  const load = async (cursor) => {
    const page = !cursor && first ? first : await get('/reports/annual-sales', { ...asked, cursor, limit: PAGE_SIZE });
    first = null; // "Previous" back to page 1 reads it again
    return page;
  };
  const caption = shown ? t('caption', { year, currency: shown }) : null;
  show(main, head, formEl, message,
    paged(load, (items) => reportTable(items, shown, caption, year)));
}

/** Year, currency and customers; "Show report" puts them in the address. */
async function reportForm(year, currency, filter) {
  const yearInput = h('input', { type: 'number', min: 1970, max: 9999, step: 1, value: String(year), class: 'year' });
  const currencyInput = h('input', { type: 'text', maxlength: 3, value: currency, autocomplete: 'off', class: 'currency' });
  const filterSelect = await customerFilterSelect(filter);
  const formEl = h('form', { class: 'report-form', novalidate: true },
    row(t('year'), yearInput, { pointer: '/year', required: true }),
    row(t('currency'), currencyInput, { pointer: '/currency', hint: t('currencyHint') }),
    row(t('customers'), filterSelect),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('show'))));
  formEl.addEventListener('submit', (e) => {
    e.preventDefault();
    const choice = { year: yearInput.value.trim(), currency: currencyInput.value.trim().toUpperCase(), ...filterOf(filterSelect) };
    const address = Object.fromEntries(Object.entries(choice).filter(([, v]) => v !== ''));
    const before = location.hash;
    go('report', address);
    // The same question again (after a sale was recorded, say) reads the report again.
    if (location.hash === before) window.dispatchEvent(new HashChangeEvent('hashchange'));
  });
  return formEl;
}

function reportTable(items, currency, caption, year) {
  // Months without sales are dimmed, so the months with sales stand out.
  const amount = (value) => (Number(value) === 0 ? h('span', { class: 'zero' }, money(value, currency)) : money(value, currency));
  const columns = [
    { label: t('customer'), cell: customerCell },
    { label: t('email'), cell: (r) => r.email || '' },
    { label: t('segment'), cell: (r) => r.segment?.name || '' },
    ...Array.from({ length: 12 }, (_, i) => ({ label: t(`m${i + 1}`), cell: (r) => amount(r.months[i]), numeric: true })),
    { label: t('total'), cell: (r) => h('strong', {}, amount(r.total)), numeric: true },
    { label: t('orders'), cell: (r) => number(r.orders), numeric: true },
  ];
  if (!items.length) return h('p', { class: 'empty' }, t('empty', { year }));
  // Fifteen columns are wider than most screens: the table scrolls sideways in a
  // region that keyboard users can focus and scroll too.
  return h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': caption || t('title') },
    table(columns, items, { caption }));
}

function customerCell(r) {
  if (r.name === null) return t('deleted', { id: r.customer_id });
  return h('a', { href: `#/customers/${segment(r.customer_id)}` }, r.name || r.email || r.customer_id);
}

/** Every page of the report as the API writes it in CSV, saved as one file. */
async function downloadCsv(asked, button, message) {
  button.disabled = true;
  show(message, h('p', { role: 'status' }, t('downloading')));
  try {
    const text = await allCsv('/reports/annual-sales', { ...asked, format: 'csv' });
    const file = `annual-sales-${asked.year}${asked.currency ? `-${asked.currency}` : ''}.csv`;
    download(file, text);
    show(message, notice(t('downloaded', { file })));
  } catch (err) {
    show(message, problem(err));
  } finally {
    button.disabled = false;
  }
}
