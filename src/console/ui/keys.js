// keys.js: the API keys page (Standard and Restricted lists, live/test, search, pages) and
// the per-key ⋯ menu with its dialogs: roll, permissions, revoke, create.
import { api } from './api.js';
import {
  h, clear, field, fmtTime, fmtDate, fmtAgo, plural, toast, modal, button, copyText, nextId, onSubmit,
} from './dom.js';
import { state, isAdmin, go } from './state.js';
import { openRestrict } from './restrict.js';

const PAGE = 20;
let config = null;   // GET /config: resources, egress, roll choices (cached per sign-in)

export async function loadConfig() {
  if (!config) config = await api.config();
  return config;
}
export function forgetConfig() { config = null; }

export async function renderKeys(main, params) {
  if (params.get('mode') === 'test' || params.get('mode') === 'live') state.mode = params.get('mode');
  document.title = 'API keys · iplock console';
  const q = params.get('q') || '';
  const status = params.get('status') === 'all' ? 'all' : 'active';
  const search = h('input.search', { type: 'search', placeholder: 'Search name, note, id or last 4',
                                     value: q, 'aria-label': 'Search keys' });
  let timer = 0;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => lists.forEach((l) => l.reload(search.value.trim(), showAll.checked)), 250);
  });
  const showAll = h('input', { type: 'checkbox', id: 'show-all', checked: status === 'all' });
  showAll.addEventListener('change', () => lists.forEach((l) => l.reload(search.value.trim(), showAll.checked)));

  const modeBtn = (m, label) => {
    const b = h(`button.${m}`, { type: 'button', 'aria-pressed': state.mode === m ? 'true' : 'false' }, label);
    b.addEventListener('click', () => go('keys', { mode: m }));
    return b;
  };
  if (state.mode === 'test') main.before(h('div.test-banner', {}, 'Viewing test data'));

  main.append(
    h('div.page-head', {},
      h('div', {}, h('h1', {}, 'API keys'),
        h('p', {}, 'Keys for the API behind iplock gate. Lock each one to the addresses your servers call from.')),
      h('div.segmented', { role: 'group', 'aria-label': 'Key mode' },
        modeBtn('live', 'Live'), modeBtn('test', 'Test mode'))),
    h('div.toolbar', {}, search,
      h('label.muted', { for: 'show-all' }, showAll, ' Show revoked and expired'),
      h('span.grow')));

  const lists = [
    keyList(main, { title: 'Standard keys', type: 'standard', kind: 'secret',
                    blurb: 'Secret and publishable keys with access to every route.' }),
    keyList(main, { title: 'Restricted keys', type: 'restricted', kind: 'restricted',
                    blurb: 'Keys limited to the resources you choose (None, Read or Write each).' }),
  ];
  await Promise.all(lists.map((l) => l.reload(q, status === 'all')));
}

function keyList(main, opts) {
  const body = h('div');
  const foot = h('div.card-foot');
  const head = h('div.card-head', {},
    h('div', {}, h('h2', {}, opts.title), h('p', {}, opts.blurb)),
    isAdmin() ? button(`+ Create ${opts.kind} key`, () => openCreate(opts.kind, reload), 'primary',
                        { 'data-create': opts.kind }) : null);
  const card = h('section.card', { 'aria-label': opts.title }, head, body, foot);
  main.append(card);
  let cursors = [null];  // cursor of each page seen, for Previous
  let page = 0;
  let q = '';
  let all = false;

  async function load() {
    const res = await api.listKeys({ type: opts.type, mode: state.mode, status: all ? 'all' : 'active',
                                     q, limit: PAGE, after: cursors[page] || undefined });
    clear(body);
    clear(foot);
    if (!res.data.length) {
      body.append(h('p.empty', {}, q ? `No ${opts.title.toLowerCase()} match “${q}”.`
                                     : `No ${state.mode} ${opts.title.toLowerCase()} yet.`));
    } else {
      body.append(keyTable(res.data, reload));
    }
    if (res.has_more) cursors[page + 1] = res.next_cursor;
    const prev = button('Previous', () => { page -= 1; load(); }, 'small', { disabled: page === 0 });
    const next = button('Next', () => { page += 1; load(); }, 'small', { disabled: !res.has_more });
    const first = page * PAGE + (res.data.length ? 1 : 0);
    foot.append(h('span', {}, res.data.length ? `${first}–${page * PAGE + res.data.length}` : '0 keys'),
      h('div.pager', { role: 'group', 'aria-label': `${opts.title} pages` }, prev, next));
  }
  async function reload(newQ, newAll) {
    if (newQ !== undefined) { q = newQ; all = !!newAll; }
    cursors = [null];
    page = 0;
    await load();
  }
  return { reload };
}

function typeBadge(k) {
  return h('span.badge.badge-neutral', {}, k.type === 'org' ? 'Organization' : k.type[0].toUpperCase() + k.type.slice(1));
}

function permSummary(k) {
  const p = Object.entries(k.permissions || {});
  if (!p.length) return h('div.cell-sub', {}, 'No permissions');
  return h('div.cell-sub', {}, p.map(([r, lv]) => `${r}: ${lv}`).join(', '));
}

function statusBadge(k) {
  if (k.status === 'revoked') return h('span.badge.badge-danger', {}, 'Revoked');
  if (k.status === 'expired') return h('span.badge.badge-danger', {}, 'Expired');
  return null;
}

function restrictionCell(k, reload) {
  if (k.type === 'publishable') return h('span.muted', {}, 'Not applicable');
  if (!k.allowlist || !k.allowlist.length) return h('span.muted', {}, 'Any address');
  const n = k.allowlist.length;
  const shown = k.allowlist.slice(0, 2).join(', ') + (n > 2 ? ` +${n - 2}` : '');
  const cell = [h('div', {}, plural(n, 'address', 'addresses')), h('div.cell-sub.mono', {}, shown)];
  if (k.allowlist_mode === 'report') {
    const row = h('div.report-row', {}, h('span.badge.badge-warn', {}, 'Report only'));
    cell.push(row);
    api.getKey(k.id).then((d) => {
      const n2 = (d.usage && d.usage.would_refuse) || 0;
      row.append(h('span.cell-sub', { 'data-would-refuse': n2 }, `${plural(n2, 'request')} would be refused (7 d)`));
      if (isAdmin() && k.status === 'active') {
        row.append(button('Enforce now', () => openEnforce(k, n2, reload), 'small'));
      }
    }).catch(() => {});
  }
  return cell;
}

function expiryCell(k) {
  if (k.revoked_at) return h('span', {}, `Revoked ${fmtDate(k.revoked_at)}`);
  if (!k.expires_at) return h('span.muted', {}, 'Never');
  const left = k.expires_at - Date.now() / 1000;
  if (left <= 0) return h('span', {}, `Expired ${fmtTime(k.expires_at)}`);
  return [h('div', {}, fmtTime(k.expires_at)),
          left < 7 * 86400 ? h('div.cell-sub', {}, `in ${left < 3600 ? `${Math.ceil(left / 60)} min`
            : left < 86400 ? `${Math.round(left / 3600)} h` : `${Math.round(left / 86400)} d`}`) : null];
}

function keyTable(keys, reload) {
  const cols = ['Name', 'Token', 'Type', 'Mode', 'Created', 'Last used', 'IP restrictions', 'Expires'];
  const rows = keys.map((k) => {
    const label = k.name || k.masked;
    return h('tr', { dataset: { keyId: k.id } },
      h('td', { 'data-label': 'Name' }, h('div.cell-main', {}, k.name || h('span.muted', {}, 'Unnamed key'), ' ', statusBadge(k)),
        k.note ? h('div.cell-sub', {}, k.note) : null, h('div.cell-sub.mono', {}, k.id)),
      h('td', { 'data-label': 'Token' }, h('span.key-text', {}, k.masked)),
      h('td', { 'data-label': 'Type' }, typeBadge(k), k.type === 'restricted' ? permSummary(k) : null),
      h('td', { 'data-label': 'Mode' }, h(`span.badge.badge-${k.mode}`, {}, k.mode === 'live' ? 'Live' : 'Test')),
      h('td', { 'data-label': 'Created' }, fmtDate(k.created)),
      h('td', { 'data-label': 'Last used' }, k.last_used
        ? [h('div', {}, fmtAgo(k.last_used.time)), h('div.cell-sub', {}, `from ${k.last_used.client}`)]
        : h('span.muted', {}, 'Never')),
      h('td', { 'data-label': 'IP restrictions' }, restrictionCell(k, reload)),
      h('td', { 'data-label': 'Expires' }, expiryCell(k)),
      h('td.actions', {}, keyMenu(k, label, reload)));
  });
  return h('div.table-wrap', {}, h('table.stack.keys-table', {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)), h('th', {}, h('span.sr-only', {}, 'Actions')))),
    h('tbody', {}, rows)));
}

// The ⋯ menu: a button with a role=menu list, arrow keys move, Escape closes.
let openMenu = null;
function closeMenu(focusButton) {
  if (!openMenu) return;
  const { menu, btn } = openMenu;
  openMenu = null;
  menu.remove();
  btn.setAttribute('aria-expanded', 'false');
  if (focusButton) btn.focus();
}
document.addEventListener('mousedown', (ev) => {
  if (openMenu && !openMenu.menu.contains(ev.target) && ev.target !== openMenu.btn) closeMenu(false);
});
window.addEventListener('resize', () => closeMenu(false));
window.addEventListener('scroll', () => closeMenu(false), true);

function keyMenu(k, label, reload) {
  const btn = h('button.icon-btn', { type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
                                     'aria-label': `Actions for ${label}`, 'data-menu': k.id }, '⋯');
  const live = k.status === 'active';
  const items = [];
  if (k.type !== 'publishable') {
    items.push([isAdmin() && live ? 'Manage IP restrictions' : 'View IP restrictions',
                () => openRestrict(k, { reload, readOnly: !isAdmin() || !live, loadConfig, openEnforce })]);
  }
  if (isAdmin() && live) {
    items.push(['Roll key…', () => openRoll(k, reload)]);
    if (k.type === 'restricted') items.push(['Edit permissions', () => openPerms(k, reload)]);
    items.push(['Revoke key…', () => openRevoke(k, reload), 'danger']);
  }
  items.push(['View audit log', () => go('audit', { key: k.id })]);
  btn.addEventListener('click', () => {
    if (openMenu && openMenu.btn === btn) { closeMenu(true); return; }
    closeMenu(false);
    const menu = h('div.menu', { role: 'menu', 'aria-label': `Actions for ${label}` });
    const buttons = items.map(([text, fn, cls]) => {
      const b = h(`button${cls ? `.${cls}` : ''}`, { type: 'button', role: 'menuitem', tabindex: '-1' }, text);
      b.addEventListener('click', () => { closeMenu(false); fn(btn); });
      return b;
    });
    buttons.forEach((b) => {
      if (b.classList.contains('danger')) menu.append(h('hr', { role: 'separator' }));
      menu.append(b);
    });
    menu.addEventListener('keydown', (ev) => {
      const i = buttons.indexOf(document.activeElement);
      if (ev.key === 'ArrowDown') { ev.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
      else if (ev.key === 'ArrowUp') { ev.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
      else if (ev.key === 'Home') { ev.preventDefault(); buttons[0].focus(); }
      else if (ev.key === 'End') { ev.preventDefault(); buttons[buttons.length - 1].focus(); }
      else if (ev.key === 'Escape') { ev.preventDefault(); closeMenu(true); }
      else if (ev.key === 'Tab') closeMenu(false);
    });
    document.body.append(menu);
    // fixed position from the button (the table scrolls sideways at phone width)
    const r = btn.getBoundingClientRect();
    menu.classList.add('menu-fixed');
    const below = window.innerHeight - r.bottom > menu.offsetHeight + 8;
    menu.style.top = `${below ? r.bottom + 4 : r.top - menu.offsetHeight - 4}px`;
    menu.style.left = `${Math.max(8, r.right - menu.offsetWidth)}px`;
    btn.setAttribute('aria-expanded', 'true');
    openMenu = { menu, btn };
    buttons[0].focus();
  });
  return btn;
}

// Shows a key's text once: a read-only field, a copy button, and a warning.
function secretView(secret, masked) {
  const input = h('input', { type: 'text', readonly: true, value: secret, 'aria-label': 'Key text', id: 'new-secret' });
  const copy = button('Copy', async () => {
    const ok = await copyText(secret, input);
    copy.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    if (ok) toast(`${masked} copied to the clipboard`);
  }, '', { id: 'copy-secret' });
  input.addEventListener('focus', () => input.select());
  return [
    h('div.callout.callout-warn', {}, h('h3', {}, 'Save this key now'),
      h('p', {}, 'This is the only time the full key is shown. Store it in your secrets manager; iplock keeps only its hash.')),
    h('div.secret-box', {}, input, copy),
  ];
}

function footer(...buttons) { return h('div.modal-foot', {}, ...buttons); }

function errorBox() { return h('div.form-error', { role: 'alert' }); }

// Permission matrix: one row per resource of the gate's route table, None / Read / Write.
function permMatrix(resources, current) {
  const get = {};
  const rows = resources.map((r) => {
    const name = nextId('perm');
    const level = (current && current[r.name]) || 'none';
    const radios = ['none', 'read', 'write'].map((lv) => {
      const input = h('input', { type: 'radio', name, value: lv, checked: lv === level,
                                 'aria-label': `${r.name}: ${lv}`, dataset: { resource: r.name } });
      return h('label', {}, input, lv[0].toUpperCase() + lv.slice(1));
    });
    get[r.name] = () => {
      const c = rows.length && document.querySelector(`input[name="${name}"]:checked`);
      return c ? c.value : 'none';
    };
    const paths = (r.routes || []).map((rt) => `${rt.method === '*' ? '' : `${rt.method} `}${rt.path}`).join(', ');
    return h('tr', {}, h('td', {}, r.name, h('div.cell-sub', {}, paths)),
      h('td', {}, h('div.choice', { role: 'radiogroup', 'aria-label': `Permission for ${r.name}` }, radios)));
  });
  const table = h('div.table-wrap', {}, h('table.perm-table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Resource'), h('th', { scope: 'col' }, 'Permission'))),
    h('tbody', {}, rows)));
  table.values = () => {
    const out = {};
    for (const [k, fn] of Object.entries(get)) out[k] = fn();
    return out;
  };
  return table;
}

async function openCreate(kind, reload) {
  const cfg = await loadConfig();
  const body = h('form.modal-body', { novalidate: true });
  const err = errorBox();
  const typeRadio = (t, title, text) => h('label.type-card', {},
    h('input', { type: 'radio', name: 'key-type', value: t, checked: t === kind }),
    h('div', {}, h('strong', {}, title), h('span', {}, text)));
  const name = h('input', { type: 'text', name: 'name', maxlength: 200, autocomplete: 'off', id: 'key-name' });
  const note = h('textarea', { name: 'note', rows: 2, maxlength: 1000, id: 'key-note' });
  const expires = h('input', { type: 'date', name: 'expires', id: 'key-expires',
                               min: new Date(Date.now() + 86400000).toISOString().slice(0, 10) });
  const matrix = permMatrix(cfg.resources || [], {});
  const permBox = h('div', {}, h('p.section-label', {}, 'Permissions'), matrix);
  const sync = () => { permBox.hidden = body.querySelector('input[name=key-type]:checked').value !== 'restricted'; };
  const submit = h('button.btn.primary', { type: 'submit' }, 'Create key');
  body.append(err,
    h('div.choice-row', { role: 'radiogroup', 'aria-label': 'Key type' },
      typeRadio('secret', 'Secret key', 'Every route of the API.'),
      typeRadio('restricted', 'Restricted key', 'Only the resources you allow.')),
    h('p.muted', {}, 'Mode: ', h(`span.badge.badge-${state.mode}`, {}, state.mode === 'live' ? 'Live' : 'Test'),
      ' (switch mode on the API keys page)'),
    field('Name', name, 'Where the key is used, e.g. “billing worker”.'),
    field('Note (optional)', note),
    field('Expires (optional)', expires, 'The key stops working at the end of this day.'),
    permBox,
    footer(button('Cancel', () => dlg.close()), submit));
  body.addEventListener('change', sync);
  sync();
  const dlg = modal(kind === 'restricted' ? 'Create restricted key' : 'Create secret key', body, { wide: true });
  name.focus();
  onSubmit(body, submit, err, async () => {
    err.textContent = '';
    const type = body.querySelector('input[name=key-type]:checked').value;
    const spec = { type, mode: state.mode };
    if (name.value.trim()) spec.name = name.value.trim();
    if (note.value.trim()) spec.note = note.value.trim();
    if (expires.value) spec.expires_at = Math.floor(new Date(`${expires.value}T23:59:59`).getTime() / 1000);
    if (type === 'restricted') {
      const perms = matrix.values();
      spec.permissions = {};
      for (const [r, lv] of Object.entries(perms)) if (lv !== 'none') spec.permissions[r] = lv;
      if (!Object.keys(spec.permissions).length)
        throw new Error('Give the restricted key at least one permission (Read or Write).');
    }
    const res = await api.createKey(spec);
    showSecret(body, dlg, res, reload, `${res.key.name || 'The key'} (${res.key.id}) is active now. `,
      'Next: limit it to the addresses it will be used from (⋯ → Manage IP restrictions).');
  });
}

// A new key's secret, shown this once in place of the form, with a note and Done.
function showSecret(body, dlg, res, reload, ...note) {
  clear(body).append(...secretView(res.secret, res.key.masked), h('p.muted', {}, ...note),
    footer(h('button.btn.primary', { type: 'button', onclick: () => dlg.close(), id: 'done' }, 'Done')));
  body.querySelector('#copy-secret').focus();
  reload();
}

const ROLL = [['now', 'Now'], ['1h', 'In 1 hour'], ['24h', 'In 24 hours'], ['3d', 'In 3 days'], ['7d', 'In 7 days']];

function openRoll(k, reload) {
  const body = h('form.modal-body', { novalidate: true });
  const err = errorBox();
  const sel = h('select', { id: 'roll-expiry', name: 'expire_in' },
    ROLL.map(([v, t]) => h('option', { value: v }, t)));
  const submit = h('button.btn.primary', { type: 'submit' }, 'Roll API key');
  body.append(err,
    h('p', {}, 'A new key replaces ', h('span.key-text', {}, k.masked),
      ' with the same type, mode, name, permissions and IP restrictions. Choose when the old key stops working; until then both work.'),
    field('Expiration of the old key', sel),
    footer(button('Cancel', () => dlg.close()), submit));
  const dlg = modal(`Roll ${k.name || 'key'}`, body);
  onSubmit(body, submit, err, async () => {
    const res = await api.rollKey(k.id, sel.value);
    const when = res.old && res.old.expires_at ? fmtTime(res.old.expires_at) : 'now';
    showSecret(body, dlg, res, reload, `The old key ${k.masked} expires ${sel.value === 'now' ? 'now' : when}.`);
  });
}

async function openPerms(k, reload) {
  const cfg = await loadConfig();
  const body = h('form.modal-body', { novalidate: true });
  const err = errorBox();
  const matrix = permMatrix(cfg.resources || [], k.permissions || {});
  const submit = h('button.btn.primary', { type: 'submit' }, 'Save permissions');
  body.append(err, h('p', {}, 'Write includes Read. Requests to a resource set to None get Stripe’s 403 naming the permission.'),
    matrix, footer(button('Cancel', () => dlg.close()), submit));
  const dlg = modal(`Edit permissions · ${k.name || k.masked}`, body, { wide: true });
  onSubmit(body, submit, err, async () => {
    await api.setPerms(k.id, matrix.values());
    dlg.close();
    toast('Permissions saved');
    reload();
  });
}

function openRevoke(k, reload) {
  const body = h('form.modal-body', { novalidate: true });
  const err = errorBox();
  const reason = h('textarea', { id: 'revoke-reason', rows: 2, maxlength: 500 });
  const submit = h('button.btn.danger', { type: 'submit' }, 'Revoke key');
  body.append(err,
    h('div.callout.callout-danger', {}, h('p', {}, 'Requests with ', h('span.key-text', {}, k.masked),
      ' are refused from now on, at every gate. This cannot be undone.')),
    field('Reason (optional, kept in the audit log)', reason),
    footer(button('Cancel', () => dlg.close()), submit));
  const dlg = modal(`Revoke ${k.name || 'key'}?`, body);
  onSubmit(body, submit, err, async () => {
    await api.revokeKey(k.id, reason.value.trim());
    dlg.close();
    toast(`${k.masked} revoked`);
    reload();
  });
}

function openEnforce(k, wouldRefuse, reload) {
  const body = h('form.modal-body', { novalidate: true });
  const err = errorBox();
  const submit = h('button.btn.primary', { type: 'submit', id: 'enforce-confirm' }, 'Enforce now');
  body.append(err,
    h('p', {}, `The allowlist of ${k.masked} (${k.allowlist.join(', ')}) is in report-only mode: requests from other addresses are allowed and counted.`),
    wouldRefuse
      ? h('div.callout.callout-warn', {}, h('p', {}, `${plural(wouldRefuse, 'request')} in the last 7 days came from outside the list. Once enforced, such requests get 401.`))
      : h('div.callout.callout-ok', {}, h('p', {}, 'No request in the last 7 days came from outside the list.')),
    footer(button('Cancel', () => dlg.close()), submit));
  const dlg = modal('Enforce IP restrictions', body);
  onSubmit(body, submit, err, async () => {
    await api.setAllowlistMode(k.id, 'enforce');
    dlg.close();
    toast('IP restrictions enforced');
    reload();
  });
}
