// restrict.js: the Manage IP restrictions dialog. Rows of IP address + CIDR, validated as
// typed by the API (the store's own parser); Save first asks the API what the new list would
// refuse (clients seen in the last 7 days, the proxy fleet's egress addresses) and saving over
// a warning needs an explicit confirmation, which the audit log records.
import { api, ApiError } from './api.js';
import { h, clear, fmtTime, fmtSeen, plural, toast, modal, button, nextId } from './dom.js';

function splitEntry(e) {
  const i = e.indexOf('/');
  if (i < 0) return [e, e.includes(':') ? '128' : '32'];
  return [e.slice(0, i), e.slice(i + 1)];
}

// opts: reload, readOnly, loadConfig and openEnforce (the keys page hands its own in, so this
// module does not import the keys page back).
export async function openRestrict(k, opts) {
  const [detail, cfg] = await Promise.all([api.getKey(k.id), opts.loadConfig()]);
  const ro = opts.readOnly;
  const body = h('form.modal-body', { novalidate: true });
  const err = h('div.form-error', { role: 'alert' });
  const switchId = nextId('sw');
  const limit = h('input.switch', { type: 'checkbox', role: 'switch', id: switchId,
                                    checked: detail.allowlist.length > 0, disabled: ro,
                                    'aria-describedby': `${switchId}-hint` });
  const modeName = nextId('mode');
  const modeRadio = (v, text) => h('label', {}, h('input', { type: 'radio', name: modeName, value: v, disabled: ro,
    checked: (detail.allowlist_mode || 'enforce') === v }), text);
  const modeBox = h('div.field', {}, h('span.section-label', { id: `${modeName}-l` }, 'When a request comes from another address'),
    h('div.choice', { role: 'radiogroup', 'aria-labelledby': `${modeName}-l` },
      modeRadio('enforce', 'Refuse it (enforce)'), modeRadio('report', 'Allow and report it (report only)')));
  const rowsBox = h('div', { id: 'ip-rows' });
  const addBtn = button('+ Add', () => { addRow('', ''); revalidate(); rowsBox.lastChild.querySelector('input').focus(); },
                        'ghost', { id: 'ip-add', disabled: ro });
  const editor = h('div', {},
    modeBox,
    h('p.section-label', {}, 'Individually manage'),
    h('div.ip-head', { 'aria-hidden': 'true' }, h('span', {}, 'IP address'), h('span', {}, 'CIDR'), h('span')),
    rowsBox, ro ? null : addBtn);
  const checkBox = h('div', { id: 'ip-check', 'aria-live': 'polite' });
  const usageBox = usageSummary(detail);
  const save = h('button.btn.primary', { type: 'submit', id: 'ip-save' }, 'Save');
  const foot = h('div.modal-foot', {}, h('span.spacer'),
    button(ro ? 'Close' : 'Cancel', () => dlg.close(), '', { id: 'ip-cancel' }), ro ? null : save);
  if (detail.allowlist_mode === 'report' && detail.allowlist.length && !ro) {
    foot.prepend(button('Enforce now', () => { dlg.close(); opts.openEnforce(detail, (detail.usage && detail.usage.would_refuse) || 0, opts.reload); }, '', { id: 'ip-enforce' }));
  }
  body.append(err,
    h('p', {}, 'Requests with ', h('span.key-text', {}, k.masked), ' are accepted only from these addresses. Changes reach every gate within about a second.'),
    h('div.switch-row', {}, h('div', {}, h('label', { for: switchId }, 'Limit use to a set of IP addresses'),
      h('p.field-hint', { id: `${switchId}-hint` }, 'Off: the key works from any address.')), limit),
    editor, usageBox, checkBox, foot);

  const rows = [];
  function addRow(ip, cidr) {
    const ipIn = h('input.mono', { type: 'text', value: ip, placeholder: '203.0.113.7', 'aria-label': 'IP address',
                                   autocomplete: 'off', spellcheck: 'false', disabled: ro, inputmode: 'text' });
    const cidrIn = h('input.mono', { type: 'text', value: cidr, placeholder: '32', 'aria-label': 'CIDR',
                                     autocomplete: 'off', inputmode: 'numeric', disabled: ro });
    const msg = h('p.field-error', { id: nextId('ipmsg') });
    const ok = h('p.field-ok');
    ipIn.setAttribute('aria-describedby', msg.id);
    cidrIn.setAttribute('aria-describedby', msg.id);
    const row = h('div.ip-row', {}, ipIn, cidrIn, null, msg, ok);
    const rm = h('button.icon-btn', { type: 'button', 'aria-label': 'Remove address', disabled: ro }, '×');
    row.insertBefore(rm, msg);
    const rec = { row, ipIn, cidrIn, msg, ok, valid: true };
    rm.addEventListener('click', () => {
      const i = rows.indexOf(rec);
      rows.splice(i, 1);
      row.remove();
      (rows[i] || rows[i - 1] || { ipIn: addBtn }).ipIn.focus();
      revalidate();
    });
    ipIn.addEventListener('input', () => {
      // typing "a.b.c.d/nn" into the address field moves the prefix length to its field
      const v = ipIn.value.trim();
      if (v.includes('/')) { const [a, b] = v.split('/'); ipIn.value = a; cidrIn.value = b; cidrIn.focus(); }
      else if (!cidrIn.value && v.includes(':') && /[0-9a-f]/i.test(v)) cidrIn.placeholder = '128';
      revalidate();
    });
    cidrIn.addEventListener('input', revalidate);
    rows.push(rec);
    rowsBox.append(row);
  }
  const entryOf = (r) => {
    const ip = r.ipIn.value.trim();
    const c = r.cidrIn.value.trim();
    if (!ip && !c) return '';
    return c ? `${ip}/${c}` : ip;
  };
  const entries = () => rows.map(entryOf).filter((e) => e);

  let vtimer = 0;
  let vseq = 0;
  let confirmed = false;   // the user ticked the confirmation over the check's warnings
  function revalidate() {
    clear(checkBox);
    confirmed = false;
    save.textContent = 'Save';
    save.disabled = false;
    clearTimeout(vtimer);
    vtimer = setTimeout(validate, 200);
  }
  async function validate() {
    const seq = ++vseq;
    const live = rows.filter((r) => entryOf(r));
    if (!live.length) { rows.forEach((r) => setRow(r, null)); return; }
    let res;
    try {
      res = await api.validateEntries(live.map(entryOf));
    } catch (e) {
      if (seq === vseq) err.textContent = e.message;
      return;
    }
    if (seq !== vseq) return;
    err.textContent = '';
    rows.forEach((r) => { if (!entryOf(r)) setRow(r, null); });
    live.forEach((r, i) => setRow(r, res.entries[i]));
  }
  function setRow(r, result) {
    r.valid = !result || result.ok;
    r.msg.textContent = result && !result.ok ? result.error : '';
    // say so when the store will keep another spelling (not for the implied /32 or /128)
    const plain = result && result.input.replace(/\/(32|128)$/, '');
    r.ok.textContent = result && result.ok && result.canonical !== result.input && result.canonical !== plain
      ? `Saved as ${result.canonical}` : '';
    for (const el of [r.ipIn, r.cidrIn]) {
      if (r.valid) el.removeAttribute('aria-invalid'); else el.setAttribute('aria-invalid', 'true');
    }
  }

  function syncSwitch() {
    editor.hidden = !limit.checked;
    if (limit.checked && !rows.length) addRow('', '');
    revalidate();
  }
  limit.addEventListener('change', () => { syncSwitch(); if (limit.checked) rows[0].ipIn.focus(); });
  detail.allowlist.forEach((e) => addRow(...splitEntry(e)));
  editor.hidden = !limit.checked;

  const dlg = modal(`IP restrictions · ${k.name || k.masked}`, body, { wide: true, returnFocus: opts.returnFocus });
  limit.focus();
  if (ro) return dlg;

  function showCheck(check) {
    clear(checkBox);
    const parts = [];
    if (check.refused_clients && check.refused_clients.length) {
      parts.push(h('p', {}, `${plural(check.refused_clients.length, 'client address', 'client addresses')} used this key in the last 7 days and would be refused:`),
        h('div.table-wrap', {}, h('table', { id: 'refused-clients' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Requests'),
            h('th', { scope: 'col' }, 'Last seen'))),
          h('tbody', {}, check.refused_clients.map((c) => h('tr', {},
            h('td.mono', {}, c.client), h('td', {}, (c.requests ?? (c.allowed + c.denied)).toLocaleString()),
            h('td', { title: fmtTime(c.last_seen) }, fmtSeen(c.last_seen))))))));
    }
    if (check.missing_egress && check.missing_egress.length) {
      parts.push(h('p', {}, 'Egress addresses of your proxy fleet missing from the list (requests through them would be refused):'),
        h('ul', { id: 'missing-egress' }, check.missing_egress.map((a) => h('li.mono', {}, a))));
    }
    if (check.suggested && check.suggested.length) {
      parts.push(h('p', {}, 'Suggested from observed traffic and the fleet: ',
        h('span.mono', { id: 'suggested' }, check.suggested.join(', ')), ' ',
        button('Use suggested list', () => {
          rows.splice(0).forEach((r) => r.row.remove());
          check.suggested.forEach((e) => addRow(...splitEntry(e)));
          revalidate();
          save.focus();
        }, 'small', { id: 'use-suggested' })));
    }
    const cb = h('input', { type: 'checkbox', id: 'ip-confirm' });
    cb.addEventListener('change', () => { confirmed = cb.checked; save.disabled = !cb.checked; });
    parts.push(h('label.confirm-row', { for: 'ip-confirm' }, cb,
      h('span', {}, 'I understand: save anyway. These requests will be refused, and the audit log records that I confirmed.')));
    const confirmBox = h('div.callout.callout-warn', { role: 'alert', id: 'ip-warning' },
      h('h3', {}, `Check before saving: ${plural(check.warnings || parts.length, 'warning')}`), parts);
    checkBox.append(confirmBox);
    save.textContent = 'Save anyway';
    save.disabled = true;
    cb.focus();
  }

  body.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    clearTimeout(vtimer);
    await validate();
    const list = limit.checked ? entries() : [];
    if (limit.checked && !list.length) {
      err.textContent = 'Add at least one address, or switch the limit off to allow any address.';
      return;
    }
    const bad = rows.find((r) => !r.valid);
    if (limit.checked && bad) {
      err.textContent = 'Fix the highlighted entries first.';
      bad.ipIn.focus();
      return;
    }
    const mode = body.querySelector(`input[name="${modeName}"]:checked`).value;
    save.disabled = true;
    try {
      if (!confirmed && list.length) {
        const check = await api.checkAllowlist(k.id, list);
        if (check.needs_confirm) { showCheck(check); return; }
      }
      // never enforce a new list for a moment on the way to report-only: report mode first,
      // and leaving report mode only once the new list is in place
      const modeChanged = list.length && mode !== (detail.allowlist_mode || 'enforce');
      if (modeChanged && mode === 'report') await api.setAllowlistMode(k.id, mode);
      await api.saveAllowlist(k.id, list, confirmed);
      if (modeChanged && mode === 'enforce') await api.setAllowlistMode(k.id, mode);
      dlg.close();
      toast(list.length ? `IP restrictions saved: ${plural(list.length, 'entry', 'entries')}${mode === 'report' ? ' (report only)' : ''}`
                        : 'IP restrictions removed: the key works from any address');
      opts.reload();
    } catch (e) {
      if (e instanceof ApiError && e.body && e.body.error && e.body.error.code === 'confirmation_required') {
        showCheck(e.body.error.check);
        return;
      }
      err.textContent = e.message;
      save.disabled = false;
    }
  });
  return dlg;
}

// What the gate saw for this key in the last 7 days.
function usageSummary(d) {
  const u = d.usage;
  if (!u || !u.clients || !u.clients.length) {
    return h('p.field-hint', {}, 'No requests with this key in the last 7 days (gate usage telemetry).');
  }
  const top = u.clients.slice().sort((a, b) => b.last_seen - a.last_seen).slice(0, 5);
  return h('details.usage', {},
    h('summary', {}, `Seen in the last 7 days: ${plural(u.clients.length, 'client address', 'client addresses')}, `
      + `${plural(u.allowed || 0, 'allowed request')}, ${(u.denied || 0).toLocaleString()} refused`
      + (u.would_refuse ? `, ${u.would_refuse.toLocaleString()} would be refused` : '')),
    h('ul.diff', {}, top.map((c) => h('li', {}, `${c.client} · ${(c.requests ?? c.allowed + c.denied).toLocaleString()} requests · last ${fmtSeen(c.last_seen)}`))));
}
