// The console's start: read the sign-in configuration, sign in, draw the frame (menu,
// tenant, language) and show the screen the address names (#/segments, #/customers/ID,
// ...). Each screen is its own module, loaded when first opened.

import { start, signIn, signOut } from './auth.js';
import { LANGUAGES, language, setLanguage, t } from './i18n.js';
import { h, show, problem, select } from './ui.js';

/** The menu, in order: address, module, words. */
const SCREENS = [
  ['segments', () => import('./screens/segments.js'), 'nav.segments'],
  ['fields', () => import('./screens/fields.js'), 'nav.fields'],
  ['customers', () => import('./screens/customers.js'), 'nav.customers'],
  ['import', () => import('./screens/import.js'), 'nav.import'],
  ['rules', () => import('./screens/rules.js'), 'nav.rules'],
  ['report', () => import('./screens/report.js'), 'nav.report'],
];

const app = document.getElementById('app');

async function boot() {
  const config = await (await fetch('config.json')).json();
  if (!config.sign_in) {
    show(app, h('main', { class: 'signin' }, h('p', {}, t('session.notConfigured'))));
    return;
  }
  show(app, h('main', { class: 'signin' }, h('p', { role: 'status' }, t('session.signingIn'))));
  let current;
  try {
    current = await start(config.sign_in);
  } catch (err) {
    show(app, h('main', { class: 'signin' },
      h('p', { role: 'alert' }, t('session.failed', { reason: err.message })),
      h('button', { type: 'button', onclick: () => signIn() }, t('session.retry'))));
    return;
  }
  frame(config.sign_in, current);
  window.addEventListener('hashchange', route);
  route();
}

let main;
let menu;

function frame(signInConfig, current) {
  main = h('main', { id: 'main', tabindex: '-1' });
  menu = h('ul', {}, SCREENS.map(([name, , words]) => h('li', {}, h('a', { href: `#/${name}` }, t(words)))));
  const languagePicker = select(Object.entries(LANGUAGES), language, {
    id: 'language',
    onchange: (e) => setLanguage(e.target.value),
  });
  const switchButton = signInConfig.dev_tenants?.length
    ? h('button', { type: 'button', onclick: switchTenant }, t('session.switch'))
    : null;
  show(app,
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, t('nav.skip')),
    h('header', { class: 'top' },
      h('span', { class: 'brand' }, t('app.name')),
      h('span', { class: 'tenant' }, `${t('session.tenant')}: `, h('strong', { 'data-testid': 'tenant' }, current.tenant)),
      h('span', { class: 'session' },
        h('label', { for: 'language' }, t('language.label')), ' ', languagePicker,
        switchButton,
        h('button', { type: 'button', onclick: signOut }, t('session.signOut')))),
    h('nav', { class: 'menu', 'aria-label': t('nav.label') }, menu),
    main);
}

/** Another tenant starts on the first screen: the address of this one (a filter by a
 *  segment id, a customer) means nothing there. */
function switchTenant() {
  history.replaceState(null, '', '#/segments');
  signIn({ prompt: 'select_account' });
}

/** Shows the screen of the current address. */
async function route() {
  const [path, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...parts] = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (!name) {
    location.replace('#/segments');
    return;
  }
  for (const link of menu.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const screen = SCREENS.find(([n]) => n === name);
  if (!screen) {
    show(main, h('p', { role: 'alert' }, t('error.notFound')));
    return;
  }
  // aria-busy while the screen draws (a paged list keeps its own until its rows arrive).
  main.setAttribute('aria-busy', 'true');
  try {
    const module = await screen[1]();
    await module.render(main, { parts, query: new URLSearchParams(search) });
  } catch (err) {
    show(main, problem(err));
  } finally {
    main.removeAttribute('aria-busy');
  }
}

boot();
