// Spanish and English: the browser's language by default, switchable (kept in
// localStorage). Each screen keeps its own words beside its code (`translator`);
// the words every screen shares are here. Numbers, money and dates use Intl.

export const LANGUAGES = { en: 'English', es: 'Español' };
const STORAGE_KEY = 'console.language';

function detect() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved in LANGUAGES) return saved;
  for (const lang of navigator.languages || [navigator.language]) {
    const base = String(lang).slice(0, 2).toLowerCase();
    if (base in LANGUAGES) return base;
  }
  return 'en';
}

export const language = detect();
document.documentElement.lang = language;

/** Switches the language and reloads the current screen in it. */
export function setLanguage(lang) {
  localStorage.setItem(STORAGE_KEY, lang);
  location.reload();
}

const common = {
  en: {
    'app.name': 'Customer segmentation',
    'nav.label': 'Main',
    'nav.segments': 'Segments',
    'nav.fields': 'Fields and clusters',
    'nav.customers': 'Customers',
    'nav.import': 'Import and export',
    'nav.rules': 'Rules',
    'nav.report': 'Annual sales',
    'nav.skip': 'Skip to content',
    'session.tenant': 'Tenant',
    'session.switch': 'Switch tenant',
    'session.signOut': 'Sign out',
    'session.signingIn': 'Signing in…',
    'session.notConfigured': 'Sign-in is not configured for this console.',
    'session.failed': 'Sign-in failed: {reason}',
    'session.retry': 'Sign in again',
    'language.label': 'Language',
    'action.save': 'Save & Close',
    'action.cancel': 'Cancel',
    'action.delete': 'Delete',
    'action.edit': 'Edit',
    'action.new': 'New',
    'action.search': 'Search',
    'action.reload': 'Reload',
    'action.download': 'Download CSV',
    'page.previous': 'Previous',
    'page.next': 'Next',
    'page.number': 'Page {n}',
    'page.label': 'Pages',
    'table.empty': 'Nothing here yet.',
    'error.title': 'Something went wrong.',
    'error.notFound': 'There is no such page.',
    'dialog.confirm': 'Confirm',
    'common.all': 'All',
    'common.none': '(none)',
    'common.yes': 'Yes',
    'common.no': 'No',
    'common.loading': 'Loading…',
    'status.active': 'Active',
    'status.inactive': 'Inactive',
    'filter.everyone': 'All customers',
    'filter.segments': 'Segments',
    'filter.segment': 'Segment: {name}',
  },
  es: {
    'app.name': 'Segmentación de clientes',
    'nav.label': 'Principal',
    'nav.segments': 'Segmentos',
    'nav.fields': 'Campos y clústeres',
    'nav.customers': 'Clientes',
    'nav.import': 'Importar y exportar',
    'nav.rules': 'Reglas',
    'nav.report': 'Ventas anuales',
    'nav.skip': 'Ir al contenido',
    'session.tenant': 'Inquilino',
    'session.switch': 'Cambiar de inquilino',
    'session.signOut': 'Cerrar sesión',
    'session.signingIn': 'Iniciando sesión…',
    'session.notConfigured': 'El inicio de sesión no está configurado para esta consola.',
    'session.failed': 'No se pudo iniciar sesión: {reason}',
    'session.retry': 'Volver a iniciar sesión',
    'language.label': 'Idioma',
    'action.save': 'Guardar y cerrar',
    'action.cancel': 'Cancelar',
    'action.delete': 'Eliminar',
    'action.edit': 'Editar',
    'action.new': 'Nuevo',
    'action.search': 'Buscar',
    'action.reload': 'Recargar',
    'action.download': 'Descargar CSV',
    'page.previous': 'Anterior',
    'page.next': 'Siguiente',
    'page.number': 'Página {n}',
    'page.label': 'Páginas',
    'table.empty': 'Todavía no hay nada aquí.',
    'error.title': 'Algo salió mal.',
    'error.notFound': 'Esta página no existe.',
    'dialog.confirm': 'Confirmar',
    'common.all': 'Todos',
    'common.none': '(ninguno)',
    'common.yes': 'Sí',
    'common.no': 'No',
    'common.loading': 'Cargando…',
    'status.active': 'Activo',
    'status.inactive': 'Inactivo',
    'filter.everyone': 'Todos los clientes',
    'filter.segments': 'Segmentos',
    'filter.segment': 'Segmento: {name}',
  },
};

/** A `t(key, vars)` over a screen's own words ({ en: {...}, es: {...} }), falling back
 *  to the shared words, then to English, then to the key itself. */
export function translator(words = {}) {
  return (key, vars = {}) => {
    const text = words[language]?.[key] ?? common[language][key] ?? words.en?.[key] ?? common.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
  };
}

export const t = translator();

const locale = language === 'es' ? 'es-ES' : 'en-US';

/** An integer or decimal; decimal strings keep every digit (Intl formats strings exactly). */
export function number(value, options = {}) {
  if (value === null || value === undefined || value === '') return '';
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 20, ...options }).format(value);
}

/** An amount (decimal string) in `currency`. */
export function money(value, currency) {
  if (value === null || value === undefined || value === '') return '';
  if (!currency) return number(value, { minimumFractionDigits: 2 });
  // Amounts carry up to 4 decimals (sales): show them rather than round them away.
  return new Intl.NumberFormat(locale, { style: 'currency', currency, maximumFractionDigits: 4 }).format(value);
}

/** A calendar date (YYYY-MM-DD), shown without a time-zone shift. */
export function date(value) {
  if (!value) return '';
  const [y, m, d] = String(value).slice(0, 10).split('-').map(Number);
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(y, m - 1, d));
}

/** An instant (RFC 3339), in the browser's time zone. */
export function dateTime(value) {
  if (!value) return '';
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(value));
}
