// audit.js: the audit log, newest first, filtered by key and by actor, each change shown as
// a readable before/after diff.
import { api } from './api.js';
import { h, clear, field, fmtTime, button } from './dom.js';
import { go } from './state.js';

const ACTIONS = {
  create: 'Created key', restrict: 'Changed IP restrictions', perm: 'Changed permissions',
  rotate: 'Rolled key', roll: 'Rolled key', expire: 'Expired key', revoke: 'Revoked key',
  allowlist_mode: 'Changed restriction mode', allow_mode: 'Changed restriction mode',
  report: 'Set IP restrictions to report only', enforce: 'Enforced IP restrictions',
  update: 'Edited key', edit: 'Edited name or note', 'user.add': 'Added console user', 'user.remove': 'Removed console user',
  'token.create': 'Created API token', 'token.revoke': 'Revoked API token',
};
// the store's field names, as the rest of the console calls them
const LABELS = { allow: 'allowlist', allow_mode: 'allowlist mode', expires_at: 'expires',
                 revoked_at: 'revoked', rotated_from: 'rolled from' };
const TIME_FIELDS = new Set(['created', 'expires_at', 'revoked_at']);
const SKIP = new Set(['gen', 'hash']);

function show(field, v) {
  if (v === null || v === undefined || v === '' || v === 0) {
    return TIME_FIELDS.has(field) ? 'never' : '—';
  }
  if (TIME_FIELDS.has(field) && typeof v === 'number') return fmtTime(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// One line per difference: + added, − removed, ~ changed.
const asObject = (v) => {
  if (typeof v !== 'string') return v;
  try { return JSON.parse(v); } catch (e) { return { value: v }; }
};

export function diffLines(rawBefore, rawAfter) {
  const before = asObject(rawBefore);
  const after = asObject(rawAfter);
  const b = before || {};
  const a = after || {};
  const lines = [];
  if (!before || !after) {
    // a record made or removed: list what it holds, leaving out what is empty
    const side = after || before;
    const kind = after ? 'add' : 'del';
    for (const n of Object.keys(side).filter((x) => !SKIP.has(x) && x !== 'id').sort()) {
      const v = side[n];
      if (v === null || v === '' || (Array.isArray(v) && !v.length)) continue;
      if (Array.isArray(v)) v.forEach((e) => lines.push([kind, n, String(e)]));
      else if (typeof v === 'object') Object.entries(v).forEach(([r, lv]) => lines.push([kind, `${n}.${r}`, show(r, lv)]));
      else lines.push([kind, n, show(n, v)]);
    }
    return lines;
  }
  const names = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((n) => !SKIP.has(n)).sort();
  for (const n of names) {
    const x = b[n];
    const y = a[n];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (Array.isArray(x) || Array.isArray(y)) {
      const xs = (x || []).map(String);
      const ys = (y || []).map(String);
      ys.filter((e) => !xs.includes(e)).forEach((e) => lines.push(['add', n, e]));
      xs.filter((e) => !ys.includes(e)).forEach((e) => lines.push(['del', n, e]));
    } else if ((x && typeof x === 'object') || (y && typeof y === 'object')) {
      const xo = x || {};
      const yo = y || {};
      for (const r of [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort()) {
        if (JSON.stringify(xo[r]) === JSON.stringify(yo[r])) continue;
        lines.push(['chg', `${n}.${r}`, `${show(r, xo[r] ?? 'none')} → ${show(r, yo[r] ?? 'none')}`]);
      }
    } else if (before && after) {
      lines.push(['chg', n, `${show(n, x)} → ${show(n, y)}`]);
    } else {
      lines.push([after ? 'add' : 'del', n, show(n, after ? y : x)]);
    }
  }
  return lines;
}

function diffView(r) {
  const lines = diffLines(r.before, r.after);
  if (!lines.length) return null;
  const sign = { add: '+', del: '−', chg: '~' };
  const label = (n) => { const [a, ...b] = n.split('.'); return [LABELS[a] || a, ...b].join('.'); };
  return h('ul.diff', { 'aria-label': 'Changes' }, lines.map(([kind, name, text]) =>
    h(`li.${kind}`, {}, `${sign[kind]} `, h('span.lbl', {}, `${label(name)}: `), text)));
}

export async function renderAudit(main, params) {
  document.title = 'Audit log · iplock console';
  const key = params.get('key') || '';
  const actor = params.get('actor') || '';
  const keyIn = h('input', { type: 'text', id: 'audit-key', value: key, placeholder: 'key_…', autocomplete: 'off' });
  const actorIn = h('input', { type: 'text', id: 'audit-actor', value: actor, placeholder: 'alice or token:deploy-bot', autocomplete: 'off' });
  const form = h('form.toolbar.filters', { role: 'search', 'aria-label': 'Filter the audit log' },
    field('Key', keyIn), field('Actor', actorIn),
    h('div.filter-actions', {}, h('button.btn.primary', { type: 'submit' }, 'Filter'),
      key || actor ? button('Clear', () => go('audit')) : null));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = {};
    if (keyIn.value.trim()) p.key = keyIn.value.trim();
    if (actorIn.value.trim()) p.actor = actorIn.value.trim();
    go('audit', p);
  });
  const list = h('div', { id: 'audit-list' });
  const foot = h('div.card-foot');
  main.append(
    h('div.page-head', {}, h('div', {}, h('h1', {}, 'Audit log'),
      h('p', {}, 'Every change to a key, by whom, and what it was before and after.'))),
    form,
    h('section.card', { 'aria-label': 'Audit records' }, list, foot));

  const cursors = [null];
  let page = 0;
  async function load() {
    const res = await api.audit({ key, actor, limit: 50, before: cursors[page] || undefined });
    clear(list);
    clear(foot);
    if (!res.data.length) list.append(h('p.empty', {}, key || actor ? 'No changes match these filters.' : 'No changes yet.'));
    for (const r of res.data) {
      list.append(h('article.audit-entry', { dataset: { seq: r.seq, action: r.action } },
        h('div.audit-meta', {},
          h('strong', {}, ACTIONS[r.action] || r.action),
          r.key_id ? h('a.mono', { href: `#/audit?key=${encodeURIComponent(r.key_id)}` }, r.key_id) : null,
          h('span.cell-sub', {}, 'by ', h('a', { href: `#/audit?actor=${encodeURIComponent(r.actor)}` }, r.actor)),
          h('span.cell-sub', {}, h('time', { datetime: new Date(r.time * 1000).toISOString() }, fmtTime(r.time)))),
        r.reason ? h('p.cell-sub', {}, `Reason: ${r.reason}`) : null,
        diffView(r)));
    }
    if (res.has_more) cursors[page + 1] = res.next_cursor;
    foot.append(h('span', {}, `Page ${page + 1}`), h('div.pager', {},
      button('Newer', () => { page -= 1; load(); }, 'small', { disabled: page === 0 }),
      button('Older', () => { page += 1; load(); }, 'small', { disabled: !res.has_more })));
  }
  await load();
}
