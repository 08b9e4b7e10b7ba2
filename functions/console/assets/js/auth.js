// Sign-in: OAuth 2.0 authorization code with PKCE (RFC 7636), for a public client with
// no secret. The verifier, the state and the token live in sessionStorage, so they
// belong to this tab only and end with it.

const KEY = 'console.session';
const PENDING = 'console.pending';

let config = null;

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

function redirectUri() {
  return `${location.origin}/console/`;
}

/** The claims of a JWT, unverified: only to show who is signed in (the API verifies). */
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return {};
  }
}

/** Sends the browser to the identity provider. `prompt: 'select_account'` asks it to
 *  offer another account (the local provider lists its dev tenants). */
export async function signIn({ prompt, loginHint } = {}) {
  const verifier = randomString(48);
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back: location.hash }));
  const url = new URL(config.authorize_url, location.origin);
  const params = {
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
  };
  if (prompt) params.prompt = prompt;
  if (loginHint) params.login_hint = loginHint;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url);
  return new Promise(() => {}); // the page is leaving
}

/** Forgets the token; goes to the provider's sign-out page where there is one. */
export function signOut() {
  sessionStorage.removeItem(KEY);
  if (config.logout_url) {
    const url = new URL(config.logout_url, location.origin);
    url.searchParams.set('client_id', config.client_id);
    url.searchParams.set('logout_uri', redirectUri());
    location.assign(url);
  } else {
    location.assign(redirectUri());
  }
}

/** The current session { token, tenant, expires }, or null. */
export function session() {
  const saved = JSON.parse(sessionStorage.getItem(KEY) || 'null');
  if (!saved || saved.expires <= Date.now()) return null;
  return saved;
}

/** Finishes a sign-in that came back with ?code=, or starts one when there is no
 *  session. Resolves to the session; throws an Error with the provider's reason. */
export async function start(signInConfig) {
  config = signInConfig;
  const query = new URLSearchParams(location.search);
  if (query.has('code') || query.has('error')) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
    sessionStorage.removeItem(PENDING);
    history.replaceState(null, '', `${location.pathname}${pending?.back || ''}`);
    if (query.has('error')) throw new Error(query.get('error_description') || query.get('error'));
    if (!pending || pending.state !== query.get('state')) throw new Error('state mismatch');
    const response = await fetch(new URL(config.token_url, location.origin), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: query.get('code'),
        redirect_uri: redirectUri(),
        client_id: config.client_id,
        code_verifier: pending.verifier,
      }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error_description || body.error || `HTTP ${response.status}`);
    const token = body[config.token];
    if (!token) throw new Error(`the token response has no ${config.token}`);
    const claims = claimsOf(token);
    const expires = claims.exp ? claims.exp * 1000 : Date.now() + (body.expires_in || 3600) * 1000;
    const saved = { token, tenant: claims[config.tenant_claim] || '', expires };
    sessionStorage.setItem(KEY, JSON.stringify(saved));
    return saved;
  }
  return session() || signIn();
}
