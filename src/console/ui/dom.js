// dom.js: small helpers shared by every page: element building, formatting, dialogs, toasts.
// No framework: h() builds elements, text is always set as text (never parsed as HTML).

export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix || 'f'}-${uid}`;
}

// A labelled field: label, control, optional hint and an error line tied by aria-describedby.
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  const err = h('p.field-error', { id: `${control.id}-err`, 'aria-live': 'polite' });
  const parts = [h('label', { for: control.id }, label), control];
  const described = [err.id];
  if (hint) {
    const hi = h('p.field-hint', { id: `${control.id}-hint` }, hint);
    parts.push(hi);
    described.push(hi.id);
  }
  parts.push(err);
  control.setAttribute('aria-describedby', described.join(' '));
  const wrap = h('div.field', {}, parts);
  wrap.setError = (msg) => {
    err.textContent = msg || '';
    if (msg) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  };
  return wrap;
}

// Dates: the API speaks unix seconds; show them in the viewer's locale, relative when recent.
export function fmtTime(sec) {
  if (!sec) return '—';
  const d = new Date(sec * 1000);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric',
                                       hour: '2-digit', minute: '2-digit' });
}

export function fmtDate(sec) {
  if (!sec) return '—';
  return new Date(sec * 1000).toLocaleDateString(undefined, { year: 'numeric', month: 'short',
                                                               day: 'numeric' });
}

export function fmtAgo(sec) {
  if (!sec) return 'Never';
  const s = Math.round(Date.now() / 1000 - sec);
  if (s < 60) return 'Just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return fmtDate(sec);
}

// Usage telemetry counts per hour: a time on the hour is the hour it was seen in, not a moment.
export function fmtSeen(sec) {
  if (!sec || sec % 3600 !== 0) return fmtAgo(sec);
  const from = new Date(sec * 1000);
  const hm = (d) => d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  const to = new Date((sec + 3600) * 1000);
  const day = from.toDateString() === new Date().toDateString() ? '' : `${fmtDate(sec)}, `;
  return `${day}${hm(from)}–${hm(to)}`;
}

export function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : (many || `${one}s`)}`;
}

// Toasts: one polite live region, messages fade after a few seconds.
export function toast(msg, kind) {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div.toasts', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const t = h(`div.toast${kind === 'error' ? '.toast-error' : ''}`, {}, msg);
  region.append(t);
  setTimeout(() => t.remove(), 5000);
}

// A modal dialog on <dialog> (focus is kept inside, Escape closes). body is built by the
// caller; close() removes it. Returns the dialog element with .close() and a promise .done.
export function modal(title, body, opts) {
  const o = opts || {};
  const titleId = nextId('dlg');
  const dlg = h(`dialog.modal${o.wide ? '.modal-wide' : ''}`, { 'aria-labelledby': titleId });
  const closeBtn = h('button.icon-btn.modal-x', { type: 'button', 'aria-label': 'Close' }, '×');
  dlg.append(h('header.modal-head', {}, h('h2', { id: titleId }, title), closeBtn), body);
  closeBtn.addEventListener('click', () => dlg.close());
  let resolve;
  dlg.done = new Promise((r) => { resolve = r; });
  dlg.addEventListener('close', () => {
    dlg.remove();
    resolve(dlg.returnValue);
    if (o.returnFocus && document.contains(o.returnFocus)) o.returnFocus.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  const first = dlg.querySelector('[autofocus]') ||
    dlg.querySelector('input:not([type=hidden]):not([disabled]), select, textarea, .modal-body button');
  if (first) first.focus();
  return dlg;
}

// A modal form's submit: its button stays disabled while fn runs; when fn fails, its message
// shows in err and the button works again.
export function onSubmit(form, submit, err, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      await fn();
    } catch (e) {
      err.textContent = e.message;
      submit.disabled = false;
    }
  });
}

export function button(label, onclick, cls, attrs) {
  return h(`button.btn${cls ? `.${cls}` : ''}`, { type: 'button', onclick, ...(attrs || {}) }, label);
}

// Copies text; the Clipboard API needs a secure context, so fall back to a selection.
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    if (input) {
      input.select();
      try { return document.execCommand('copy'); } catch (e2) { return false; }
    }
    return false;
  }
}
