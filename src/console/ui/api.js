// api.js: the one place that talks to the console's JSON API (docs/console-api.yaml).
// Every change carries the session's CSRF token; a 401 means the session is gone and the
// app goes back to the login page; errors become ApiError with the API's one-line reason.

const BASE = '/api/v1';
let csrf = '';
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function setCsrf(token) { csrf = token || ''; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function reason(body, status) {
  if (body && body.error) {
    if (typeof body.error === 'string') return body.error;
    if (body.error.message) return body.error.message;
  }
  return `The console answered ${status}.`;
}

export async function call(method, path, body, opts) {
  const o = opts || {};
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(0, 'The console cannot be reached. Check your connection and try again.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (res.status === 401 && !o.noRedirect) {
    onUnauthorized(reason(data, res.status), data && data.error ? data.error.code : '');
    throw new ApiError(401, reason(data, res.status), data);
  }
  if (!res.ok) throw new ApiError(res.status, reason(data, res.status), data);
  return data;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') p.set(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

export const api = {
  // session
  login: (username, password) => call('POST', '/login', { username, password }, { noRedirect: true }),
  me: () => call('GET', '/me', undefined, { noRedirect: true }),
  logout: () => call('POST', '/logout', undefined, { noRedirect: true }),
  config: () => call('GET', '/config'),

  // keys
  listKeys: (params) => call('GET', `/keys${qs(params)}`),
  getKey: (id) => call('GET', `/keys/${enc(id)}`),
  createKey: (spec) => call('POST', '/keys', spec),
  rollKey: (id, expireIn) => call('POST', `/keys/${enc(id)}/roll`, { expire_in: expireIn }),
  revokeKey: (id, why) => call('POST', `/keys/${enc(id)}/revoke`, why ? { reason: why } : {}),
  setPerms: (id, perms) => call('PUT', `/keys/${enc(id)}/permissions`, { permissions: perms }),
  setAllowlistMode: (id, mode) => call('PUT', `/keys/${enc(id)}/allowlist_mode`, { mode }),

  // IP restrictions: validation as typed, the check before saving, the save itself
  validateEntries: (entries) => call('POST', '/entries/validate', { entries }),
  checkAllowlist: (id, allowlist) => call('POST', `/keys/${enc(id)}/allowlist/check`, { allowlist }),
  saveAllowlist: (id, allowlist, confirm) => call('PUT', `/keys/${enc(id)}/allowlist`,
                                                  { allowlist, confirm: !!confirm }),

  // audit
  audit: (params) => call('GET', `/audit${qs(params)}`),

  // accounts and tokens (admin session)
  users: () => call('GET', '/users'),
  addUser: (u) => call('POST', '/users', u),
  deleteUser: (name) => call('DELETE', `/users/${enc(name)}`),
  tokens: () => call('GET', '/tokens'),
  createToken: (t) => call('POST', '/tokens', t),
  revokeToken: (id) => call('DELETE', `/tokens/${enc(id)}`),
};
