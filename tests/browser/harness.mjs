// What every scenario needs around the browser: Debian's headless Chromium, pages
// that fail the test on any script error or console error (CSP violations show up
// there), axe-core on every screen, screenshots, and the measurements (bytes of the
// first load, time until each screen is usable) written to the screenshots folder.

import { readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';

export const CONSOLE_URL = process.env.CONSOLE_URL || die('CONSOLE_URL is not set; run tests/browser/run.sh');
export const SCREENSHOTS = process.env.SCREENSHOTS || 'screenshots';
export const RULE_WASM = process.env.RULE_WASM;
const API_URL = process.env.API_URL;
const API_TOKEN = process.env.API_TOKEN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** How long a step may wait for what the user should see. */
export const TIMEOUT = 15_000;

function die(message) {
  throw new Error(message);
}

/** The headless browser. Playwright gives it a fresh, temporary user-data-dir (and
 *  removes it on close); the flags keep it from calling home or using a GPU. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh context (its own storage: a new sign-in, English, no saved language). */
export async function newContext(browser) {
  const context = await browser.newContext({
    locale: 'en-US',
    timezoneId: 'UTC',
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(TIMEOUT);
  return context;
}

/** Problems the page showed: script errors, console errors, 5xx answers and
 *  authorization failures. Statuses 400-499 other than 401/403 are the API saying no
 *  (validation, conflicts), which the scenarios provoke on purpose; Chromium logs each
 *  as "Failed to load resource", so those console lines are left out. */
export function watch(page) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.stack || err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const status = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(text);
    if (status && Number(status[1]) < 500 && ![401, 403].includes(Number(status[1]))) return;
    const where = msg.location()?.url ? ` (${msg.location().url})` : '';
    problems.push(`console error: ${text}${where}`);
  });
  page.on('response', (response) => {
    const status = response.status();
    if (status >= 500 || status === 401 || status === 403) {
      problems.push(`HTTP ${status} from ${response.request().method()} ${response.url()}`);
    }
  });
  page.problems = problems;
  return page;
}

/** Fails with every problem the page showed since the last call. */
export function assertNoProblems(page) {
  const seen = page.problems.splice(0);
  if (seen.length) throw new Error(`the page reported problems:\n  ${seen.join('\n  ')}`);
}

// axe-core's source, run in the page through DevTools (the page's CSP forbids inline
// scripts, so a <script> tag could not add it; evaluation is not subject to CSP).
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BLOCKING = new Set(['serious', 'critical']);

/** axe-core on the page as it is now. Fails on serious or critical violations;
 *  returns the lesser ones so they can be reported. */
export async function checkAccessibility(page, screen) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
      checked: r.passes.length + r.violations.length,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
      })),
    })));
  if (!result.checked) throw new Error(`axe-core checked nothing on "${screen}"`);
  const blocking = result.violations.filter((v) => BLOCKING.has(v.impact));
  if (blocking.length) {
    const text = blocking.map((v) => `${v.impact} ${v.id}: ${v.help}\n      ${v.nodes.slice(0, 5).join('\n      ')}`);
    throw new Error(`axe-core found serious or critical violations on "${screen}":\n    ${text.join('\n    ')}`);
  }
  return result.violations.map((v) => `${screen}: ${v.impact} ${v.id} (${v.help}), ${v.nodes.length} node(s)`);
}

let shots = 0;
/** A full-page screenshot, numbered in the order taken. Returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  shots += 1;
  const path = join(SCREENSHOTS, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** What the run measured and found, written to measurements.txt at the end. */
export const report = {
  firstLoad: null,
  allAssets: new Map(),
  timings: [],
  notes: [],
};

/** Counts the bytes of every JavaScript and CSS response the page receives, into
 *  `into` (url -> bytes) and report.allAssets. */
export function countAssets(page, into = new Map()) {
  page.on('response', async (response) => {
    const type = response.request().resourceType();
    if (type !== 'script' && type !== 'stylesheet') return;
    try {
      const bytes = (await response.body()).length;
      into.set(response.url(), { type, bytes });
      report.allAssets.set(response.url(), { type, bytes });
    } catch {
      // A response whose body is gone (the page navigated away) is counted on reload.
    }
  });
  return into;
}

/** Sums a url -> { type, bytes } map. */
export function assetTotals(assets) {
  const totals = { script: 0, stylesheet: 0, files: assets.size };
  for (const { type, bytes } of assets.values()) totals[type] += bytes;
  return { ...totals, total: totals.script + totals.stylesheet };
}

/** Does `action` (a click, a goto) and waits until the screen is usable: its h1 with
 *  `heading` shown, no list still loading (aria-busy), and `content` visible (or the
 *  function `content` done waiting). Records the time under `screen`. */
export async function timed(page, screen, action, { heading, content }) {
  const start = performance.now();
  await action();
  await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
  await page.waitForFunction(() => !document.querySelector('#main [aria-busy="true"]'));
  if (typeof content === 'function') await content();
  else if (content) await content.waitFor();
  const ms = performance.now() - start;
  report.timings.push({ screen, ms });
  return ms;
}

export function writeMeasurements() {
  const lines = ['Console measurements (tests/browser/run.sh)', ''];
  if (report.firstLoad) {
    const f = report.firstLoad;
    lines.push(`First load (sign-in to the segments list): ${kb(f.total)} of JavaScript and CSS in ${f.files} files`);
    lines.push(`  JavaScript ${kb(f.script)}, CSS ${kb(f.stylesheet)}; budget 200 KB`);
  }
  const all = assetTotals(report.allAssets);
  lines.push(`Every screen opened: ${kb(all.total)} in ${all.files} files (JavaScript ${kb(all.script)}, CSS ${kb(all.stylesheet)})`);
  lines.push('', 'Time from navigation to the h1 and the content being usable (ms; measured, not asserted):', '');
  const screens = new Map();
  for (const { screen, ms } of report.timings) screens.set(screen, [...(screens.get(screen) || []), ms]);
  const width = Math.max(6, ...[...screens.keys()].map((s) => s.length));
  lines.push(`  ${'screen'.padEnd(width)}  times  median    max`);
  for (const [screen, all] of screens) {
    const sorted = [...all].sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    lines.push(`  ${screen.padEnd(width)}  ${String(all.length).padStart(5)}  ${median.toFixed(0).padStart(6)}  ${sorted.at(-1).toFixed(0).padStart(5)}`);
  }
  if (report.notes.length) lines.push('', 'Notes (axe-core findings below serious, and the like):', ...report.notes.map((n) => `  ${n}`));
  const text = `${lines.join('\n')}\n`;
  mkdirSync(SCREENSHOTS, { recursive: true });
  writeFileSync(join(SCREENSHOTS, 'measurements.txt'), text);
  return text;
}

function kb(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

/** With UPDATE_SCREENSHOT=1, copies a screenshot to docs/console.png (the README's). */
export function maybeUpdateReadmePicture(path) {
  if (process.env.UPDATE_SCREENSHOT !== '1') return false;
  copyFileSync(path, new URL('../../docs/console.png', import.meta.url));
  return true;
}

/** Records a sale through the API, as the tenant's point of sale or ERP does: the one
 *  thing the scenarios do not do through the console, which has no sales form. */
export async function recordSale(customerId, sale) {
  const response = await fetch(`${API_URL}/customers/${encodeURIComponent(customerId)}/sales`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(sale),
  });
  if (response.status !== 201) throw new Error(`recording a sale: HTTP ${response.status} ${await response.text()}`);
}
