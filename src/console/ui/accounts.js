// accounts.js: console users and API tokens (admins only; the API refuses everyone else).
import { api } from './api.js';
import { h, clear, field, fmtDate, fmtAgo, toast, modal, button, copyText, onSubmit } from './dom.js';
import { state, isAdmin } from './state.js';

export async function renderAccounts(main) {
  document.title = 'Accounts · iplock console';
  main.append(h('div.page-head', {}, h('div', {}, h('h1', {}, 'Accounts and API tokens'),
    h('p', {}, 'People who can sign in to this console, and tokens for automation on the same API.'))));
  if (!isAdmin()) {
    main.append(h('div.callout.callout-info', {}, 'Only admins manage accounts and tokens.'));
    return;
  }
  const users = h('div');
  const tokens = h('div');
  main.append(
    h('section.card', { 'aria-label': 'Users' },
      h('div.card-head', {}, h('div', {}, h('h2', {}, 'Users'), h('p', {}, 'Admins change keys; viewers only read.')),
        button('+ Add user', () => openAddUser(loadUsers), 'primary')), users),
    h('section.card', { 'aria-label': 'API tokens' },
      h('div.card-head', {}, h('div', {}, h('h2', {}, 'API tokens'),
        h('p', {}, 'Bearer tokens for scripts and CI: read (every GET) or write (also changes keys).')),
        button('+ Create token', () => openCreateToken(loadTokens), 'primary')), tokens));

  async function loadUsers() {
    const res = await api.users();
    clear(users).append(table(['Name', 'Role', 'Created', ''], res.data.map((u) => [
      [h('span.cell-main', {}, u.name), u.name === state.user ? h('span.cell-sub', {}, ' (you)') : null],
      h('span.badge.badge-neutral', {}, u.role), fmtDate(u.created),
      u.name === state.user ? null : button('Remove', () => confirmThen(`Remove ${u.name}?`,
        `${u.name} can no longer sign in; their open sessions end now.`, 'Remove user',
        () => api.deleteUser(u.name), loadUsers), 'small', { 'aria-label': `Remove ${u.name}` }),
    ]), 'No users.'));
  }
  async function loadTokens() {
    const res = await api.tokens();
    clear(tokens).append(table(['Name', 'Token', 'Scope', 'Created', 'Last used', ''], res.data.map((t) => [
      h('span.cell-main', {}, t.name), h('span.key-text', {}, t.masked), h('span.badge.badge-neutral', {}, t.scope),
      [h('div', {}, fmtDate(t.created)), t.created_by ? h('div.cell-sub', {}, `by ${t.created_by}`) : null],
      fmtAgo(t.last_used),
      button('Revoke', () => confirmThen(`Revoke ${t.name}?`, 'Requests with this token are refused from now on.',
        'Revoke token', () => api.revokeToken(t.id), loadTokens), 'small', { 'aria-label': `Revoke token ${t.name}` }),
    ]), 'No API tokens yet.'));
  }
  await Promise.all([loadUsers(), loadTokens()]);
}

function table(cols, rows, empty) {
  if (!rows.length) return h('p.empty', {}, empty);
  return h('div.table-wrap', {}, h('table.stack', {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) =>
      h(i === r.length - 1 && !cols[i] ? 'td.actions' : 'td', { 'data-label': cols[i] || null }, c)))))));
}

function confirmThen(title, text, action, fn, after) {
  const err = h('div.form-error', { role: 'alert' });
  const go = h('button.btn.danger', { type: 'submit' }, action);
  const body = h('form.modal-body', {}, err, h('p', {}, text),
    h('div.modal-foot', {}, button('Cancel', () => dlg.close()), go));
  const dlg = modal(title, body);
  onSubmit(body, go, err, async () => {
    await fn();
    dlg.close();
    toast('Done');
    after();
  });
}

function openAddUser(after) {
  const err = h('div.form-error', { role: 'alert' });
  const name = h('input', { type: 'text', id: 'user-name', autocomplete: 'off', maxlength: 64 });
  const pass = h('input', { type: 'password', id: 'user-pass', autocomplete: 'new-password', minlength: 10 });
  const role = h('select', { id: 'user-role' }, h('option', { value: 'viewer' }, 'Viewer (read only)'),
    h('option', { value: 'admin' }, 'Admin'));
  const submit = h('button.btn.primary', { type: 'submit' }, 'Add user');
  const body = h('form.modal-body', { novalidate: true }, err,
    field('Name', name, 'Letters, digits and . _ @ -'), field('Password', pass, 'At least 10 characters.'),
    field('Role', role), h('div.modal-foot', {}, button('Cancel', () => dlg.close()), submit));
  const dlg = modal('Add user', body);
  name.focus();
  onSubmit(body, submit, err, async () => {
    await api.addUser({ name: name.value.trim(), password: pass.value, role: role.value });
    dlg.close();
    toast(`${name.value.trim()} added`);
    after();
  });
}

function openCreateToken(after) {
  const err = h('div.form-error', { role: 'alert' });
  const name = h('input', { type: 'text', id: 'token-name', autocomplete: 'off', maxlength: 64 });
  const scope = h('select', { id: 'token-scope' }, h('option', { value: 'read' }, 'Read: every GET'),
    h('option', { value: 'write' }, 'Write: also change keys'));
  const submit = h('button.btn.primary', { type: 'submit' }, 'Create token');
  const body = h('form.modal-body', { novalidate: true }, err,
    field('Name', name, 'e.g. deploy-bot; changes it makes are audited as token:NAME.'), field('Scope', scope),
    h('div.modal-foot', {}, button('Cancel', () => dlg.close()), submit));
  const dlg = modal('Create API token', body);
  name.focus();
  onSubmit(body, submit, err, async () => {
    const res = await api.createToken({ name: name.value.trim(), scope: scope.value });
    const input = h('input', { type: 'text', readonly: true, value: res.secret, id: 'new-secret', 'aria-label': 'Token text' });
    const copy = button('Copy', async () => { copy.textContent = (await copyText(res.secret, input)) ? 'Copied' : 'Press Ctrl+C'; }, '', { id: 'copy-secret' });
    clear(body).append(
      h('div.callout.callout-warn', {}, h('h3', {}, 'Save this token now'),
        h('p', {}, 'It is shown only once; the console keeps only its hash. Use it as Authorization: Bearer TOKEN.')),
      h('div.secret-box', {}, input, copy),
      h('div.modal-foot', {}, h('button.btn.primary', { type: 'button', id: 'done', onclick: () => dlg.close() }, 'Done')));
    copy.focus();
    after();
  });
}
