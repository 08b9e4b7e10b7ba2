// Calls to the API on this origin with the session's token. Problems
// (application/problem+json) become ApiProblem errors that screens can place next to
// their inputs; a 401 means the token ran out, so the console signs in again.

import { session, signIn } from './auth.js';

/** An error answer of the API: `status` and the problem document. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** A query string from an object; empty and undefined values are left out. Arrays
 *  repeat the name. */
export function queryString(query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(key, one);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** One request. `body`: an object (sent as JSON), or text with `type`. `ifMatch`: the
 *  ETag a write is conditional on. Resolves to { status, body, etag, headers }; the
 *  body is parsed when it is JSON, else text. Throws ApiProblem for 4xx and 5xx. */
export async function request(method, path, { query, body, type, ifMatch, accept } = {}) {
  const current = session();
  if (!current) await signIn();
  const headers = { authorization: `Bearer ${current.token}` };
  if (accept) headers.accept = accept;
  if (ifMatch) headers['if-match'] = ifMatch;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Blob) {
      payload = body;
      headers['content-type'] = type || 'text/plain';
    } else {
      payload = JSON.stringify(body);
      headers['content-type'] = type || 'application/json';
    }
  }
  const response = await fetch(path + queryString(query), { method, headers, body: payload });
  if (response.status === 401) await signIn();
  const contentType = response.headers.get('content-type') || '';
  const text = await response.text();
  const parsed = contentType.includes('json') && text ? JSON.parse(text) : text;
  if (!response.ok) {
    const problem = typeof parsed === 'object' ? parsed : { title: response.statusText, detail: text };
    throw new ApiProblem(response.status, problem);
  }
  return { status: response.status, body: parsed, etag: response.headers.get('etag'), headers: response.headers };
}

/** GET `path` and return the body. */
export async function get(path, query) {
  return (await request('GET', path, { query })).body;
}

/** Encodes one path segment (ids and names in paths). */
export function segment(value) {
  return encodeURIComponent(value);
}

/** Every item of a JSON listing ({ items, next_cursor }), page after page. */
export async function all(path, query = {}) {
  const items = [];
  let cursor;
  do {
    const page = await get(path, { ...query, cursor, limit: 100 });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** A whole CSV that the API answers in pages: each response is a CSV file with its own
 *  header and, when more follow, `Link: <path?query>; rel="next"`. Resolves to one file
 *  (the first header, then every page's rows). `onPage(responses)` is told progress. */
export async function allCsv(path, query = {}, onPage = () => {}) {
  let text = '';
  let next = path + queryString(query);
  for (let pages = 1; next; pages += 1) {
    const answer = await request('GET', next, { accept: 'text/csv' });
    // The header is one plain line (column names hold no quotes or line breaks).
    text += pages === 1 ? answer.body : answer.body.slice(answer.body.indexOf('\n') + 1);
    next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(answer.headers.get('link') || '')?.[1];
    onPage(pages);
  }
  return text;
}
