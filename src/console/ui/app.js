// app.js: start-up, the session, the page shell and the hash router (#/keys, #/audit, ...).
import { api, setCsrf, setUnauthorizedHandler } from './api.js';
import { h, clear, field, toast } from './dom.js';
import { renderKeys } from './keys.js';
import { renderAudit } from './audit.js';
import { renderAccounts } from './accounts.js';

import { state, isAdmin } from './state.js';

const app = document.getElementById('app');

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { path: path || 'keys', params: new URLSearchParams(query || '') };
}

function adoptSession(me) {
  state.user = (me.user && me.user.name) || '';
  state.role = (me.user && me.user.role) || 'viewer';
  setCsrf(me.csrf_token || '');
}

function signedOut(message) {
  state.user = null;
  state.role = null;
  setCsrf('');
  renderLogin(message);
}

setUnauthorizedHandler((reason, code) => {
  if (!state.user) return;
  signedOut(code === 'session_expired' ? 'Your session expired. Sign in again to continue.'
                                       : `You were signed out: ${reason}`);
});

function renderLogin(note) {
  document.title = 'Sign in · iplock console';
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true,
                            autocapitalize: 'off', spellcheck: 'false' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password',
                            required: true });
  const err = h('div.form-error', { role: 'alert', id: 'login-error' });
  const submit = h('button.btn.primary', { type: 'submit' }, 'Sign in');
  const form = h('form', { novalidate: true, 'aria-describedby': 'login-error' },
    err, field('Username', user), field('Password', pass), submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    if (!user.value || !pass.value) {
      err.textContent = 'Enter your username and password.';
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const s = await api.login(user.value, pass.value);
      pass.value = '';
      adoptSession(s);
      render();
    } catch (e) {
      err.textContent = e.message;
      submit.disabled = false;
      submit.textContent = 'Sign in';
      pass.select();
      pass.focus();
    }
  });
  clear(app).append(h('main.login-wrap', { id: 'main' },
    h('div.login-card', {},
      h('div.brand', {}, h('img', { src: 'icon.svg', alt: '' }), 'iplock', h('span.brand-sub', {}, 'console')),
      h('h1', {}, 'Sign in'),
      h('p', {}, 'Manage API keys and the addresses they may be used from.'),
      note ? h('div.form-note', { role: 'status' }, note) : null,
      form)));
  user.focus();
}

function shell(active) {
  const links = [['keys', 'API keys'], ['audit', 'Audit log']];
  if (isAdmin()) links.push(['accounts', 'Accounts']);
  const signOut = h('button.btn.small', { type: 'button' }, 'Sign out');
  signOut.addEventListener('click', async () => {
    try { await api.logout(); } catch (e) { /* the session is gone either way */ }
    signedOut('You have signed out.');
  });
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(app).append(
    h('header.topbar', {},
      h('div.topbar-inner', {},
        h('a.brand', { href: '#/keys' }, h('img', { src: 'icon.svg', alt: '' }), 'iplock',
          h('span.brand-sub', {}, 'console')),
        h('nav.nav', { 'aria-label': 'Main' }, links.map(([p, label]) =>
          h('a', { href: `#/${p}`, 'aria-current': p === active ? 'page' : false }, label))),
        h('div.whoami', {}, h('span', { id: 'whoami' }, state.user),
          h('span.role', { id: 'role' }, state.role), signOut))),
    main);
  return main;
}

async function render() {
  if (!state.user) {
    try {
      adoptSession(await api.me());
    } catch (e) {
      renderLogin(e.status && e.status !== 401 ? e.message : null);
      return;
    }
  }
  const r = route();
  const pages = { keys: renderKeys, audit: renderAudit, accounts: renderAccounts };
  const page = pages[r.path] ? r.path : 'keys';
  const main = shell(page);
  try {
    await pages[page](main, r.params);
  } catch (e) {
    if (e.status === 401) return;
    main.append(h('div.callout.callout-danger', { role: 'alert' }, e.message));
  }
}

window.addEventListener('hashchange', render);
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason && ev.reason.status === 401) return;
  toast(ev.reason && ev.reason.message ? ev.reason.message : 'Something went wrong.', 'error');
});
render();
