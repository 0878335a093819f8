// state.js: who is signed in and the page-wide choices (live/test), shared by every page.
export const state = { user: null, role: null, mode: 'live' };

export function isAdmin() { return state.role === 'admin'; }

// Navigates to #/path?params; the same address again re-renders the page.
export function go(path, params) {
  const q = params ? new URLSearchParams(params).toString() : '';
  const next = `#/${path}${q ? `?${q}` : ''}`;
  if (location.hash === next) window.dispatchEvent(new Event('hashchange'));
  else location.hash = next;
}
