// The portal's shell: who is signed in, the navigation their role may use, a router on
// location.pathname (history.pushState), and signing out. Each page is a module whose
// render(main, ctx) fills its own <main id="page-…"> and may return a cleanup function.

import { api, setCsrfToken, onUnauthenticated, seg } from './api.js';
import { h, replace, roleLabel } from './dom.js';
import { notify, clearNotice, errorText, loading, button } from './ui.js';
import * as signin from './page-signin.js';
import * as invite from './page-invite.js';
import * as keys from './page-keys.js';
import * as usage from './page-usage.js';
import * as budget from './page-budget.js';
import * as users from './page-users.js';
import * as audit from './page-audit.js';
import * as system from './page-system.js';
import * as capacity from './page-capacity.js';
import * as chat from './page-chat.js';

const BASE = '/portal';

/** Every page: its module and title. */
const PAGES = {
  keys: { module: keys, title: 'Keys' },
  usage: { module: usage, title: 'Usage' },
  budget: { module: budget, title: 'Budget' },
  users: { module: users, title: 'Users' },
  audit: { module: audit, title: 'Audit log' },
  system: { module: system, title: 'System' },
  capacity: { module: capacity, title: 'Capacity' },
  chat: { module: chat, title: 'Chat' },
};

/** What each role may use, in navigation order; the first is its landing page. */
const ROLE_PAGES = {
  org_user: ['keys', 'usage', 'budget', 'chat'],
  org_admin: ['keys', 'usage', 'budget', 'users', 'audit', 'chat'],
  analyst: ['system'],
  system_admin: ['system', 'capacity', 'audit'],
};

let session = null;
let dispose = null;
let bootToken = 0;

const nav = () => document.getElementById('nav');
const whoami = () => document.getElementById('whoami');
const app = () => document.getElementById('app');

export function navigate(path, { replaceState = false } = {}) {
  if (path !== location.pathname + location.hash) {
    if (replaceState) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
  }
  route();
}

function pageOfPath(pathname) {
  const rest = pathname.startsWith(`${BASE}/`) ? pathname.slice(BASE.length + 1) : '';
  return rest.split('/')[0] || '';
}

// ---------------------------------------------------------------- header

function renderHeader() {
  const pages = session ? ROLE_PAGES[session.role] || [] : [];
  replace(nav(), pages.map((name) =>
    h('a', { href: `${BASE}/${name}`, 'data-page': name, 'data-link': '', class: 'nav-link' }, PAGES[name].title)));
  nav().hidden = !session;
  if (!session) {
    replace(whoami());
    whoami().hidden = true;
    return;
  }
  const user = session.user || {};
  replace(whoami(),
    h('div', { class: 'user-box' },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(user.name || user.email || '?')),
      h('span', { class: 'user-text' },
        h('span', { class: 'user-name', title: user.email || '' }, user.name || user.email || 'Signed in'),
        h('span', { class: 'user-meta' },
          h('span', { class: 'user-role', 'data-role': session.role }, roleLabel(session.role)),
          h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
          h('span', { class: 'tenant-name', 'data-tenant-id': session.tenantId || '' }, session.tenantName)))),
    button('Sign out', { id: 'signout', class: 'btn-small', onclick: signOut }));
  whoami().hidden = false;
}

function initials(text) {
  const parts = String(text).split(/[\s@._-]+/).filter(Boolean);
  return ((parts[0]?.[0] || '?') + (parts[1]?.[0] || '')).toUpperCase();
}

function markCurrent(name) {
  for (const link of nav().querySelectorAll('a[data-page]')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- routing

function mount(name, title) {
  if (dispose) {
    try {
      dispose();
    } catch {
      // a page's cleanup must not stop the next page
    }
    dispose = null;
  }
  const main = h('main', { id: `page-${name}`, class: 'page', tabindex: '-1' });
  replace(app(), main);
  document.title = title ? `${title} · Switchyard` : 'Switchyard';
  return main;
}

function show(name, title, module) {
  const main = mount(name, title);
  const result = module.render(main, context());
  if (typeof result === 'function') dispose = result;
  markCurrent(name);
}

function context() {
  return {
    session,
    navigate,
    signedIn: () => boot(),
  };
}

function route() {
  const name = pageOfPath(location.pathname);
  if (name === 'invite') {
    show('invite', 'Accept invite', invite);
    return;
  }
  if (!session) {
    show('signin', 'Sign in', signin);
    return;
  }
  const allowed = ROLE_PAGES[session.role] || [];
  if (!name) {
    if (!allowed.length) {
      const main = mount('home', 'Switchyard');
      main.append(h('div', { class: 'card' }, h('h1', null, 'Nothing to show'),
        h('p', null, `The portal has no pages for the role ${roleLabel(session.role)}.`)));
      return;
    }
    history.replaceState(null, '', `${BASE}/${allowed[0]}`);
    return route();
  }
  const page = PAGES[name];
  if (!page) {
    const main = mount('notfound', 'Not found');
    main.append(h('div', { class: 'card state-card' },
      h('h1', null, 'Page not found'),
      h('p', null, 'There is no such page in the portal.'),
      allowed.length ? h('p', null, h('a', { href: `${BASE}/${allowed[0]}`, 'data-link': '' }, `Go to ${PAGES[allowed[0]].title}`)) : null));
    markCurrent(null);
    return;
  }
  if (!allowed.includes(name)) {
    const main = mount(name, page.title);
    main.classList.add('not-available');
    main.append(h('div', { class: 'card state-card', role: 'alert' },
      h('h1', null, page.title),
      h('p', { class: 'not-available-message' }, `This page is not available for your role (${roleLabel(session.role)}).`),
      allowed.length ? h('p', null, h('a', { href: `${BASE}/${allowed[0]}`, 'data-link': '' }, `Go to ${PAGES[allowed[0]].title}`)) : null));
    markCurrent(null);
    return;
  }
  show(name, page.title, page.module);
}

// ---------------------------------------------------------------- session

async function boot() {
  const token = ++bootToken;
  let me = null;
  try {
    me = await api.get('/auth/me', { session: false });
  } catch (error) {
    if (error.status !== 401) {
      session = null;
      renderHeader();
      const main = mount('error', 'Switchyard');
      main.append(h('div', { class: 'card state-card', role: 'alert' },
        h('h1', null, 'Switchyard could not be reached'),
        h('p', null, errorText(error)),
        button('Try again', { onclick: () => boot() }, 'primary')));
      return;
    }
  }
  if (token !== bootToken) return;
  if (me) {
    setCsrfToken(me.csrf_token);
    session = {
      role: me.role,
      tenantId: me.tenant_id || null,
      credential: me.credential,
      user: me.user || { id: null, name: 'Administrator', email: '' },
      tenantName: me.tenant_id ? me.tenant_id : 'Platform',
      isOrgAdmin: me.role === 'org_admin',
      isGlobal: me.role === 'system_admin' || me.role === 'analyst',
    };
    if (me.tenant_id) {
      try {
        const tenant = await api.get(`/admin/v1/tenants/${seg(me.tenant_id)}`);
        session.tenantName = tenant.name || me.tenant_id;
        session.tier = tenant.tier;
      } catch {
        // the id stands in for the name
      }
    }
  } else {
    session = null;
    setCsrfToken(null);
  }
  renderHeader();
  route();
}

async function signOut() {
  const btn = document.getElementById('signout');
  if (btn) {
    btn.disabled = true;
    btn.textContent = 'Signing out…';
  }
  try {
    await chat.forgetChatKey(session, { revoke: true });
  } catch {
    // the key expires within the hour anyway
  }
  try {
    await api.post('/auth/logout');
  } catch (error) {
    if (error.status !== 401) {
      notify(`Signing out failed: ${errorText(error)}`, 'error');
      if (btn) {
        btn.disabled = false;
        btn.textContent = 'Sign out';
      }
      return;
    }
  }
  setCsrfToken(null);
  session = null;
  // A fresh document: nothing shown once (a new key's secret) survives signing out.
  location.replace(`${BASE}/`);
}

// A secret shown once (a new key, a webhook's signing secret, an invite link) goes with
// the page: not kept for the browser's Back button, and a page brought back from its
// cache starts afresh.
window.addEventListener('pagehide', () => {
  for (const shown of document.querySelectorAll('.one-time')) shown.remove();
});
window.addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});

onUnauthenticated(() => {
  if (!session) return;
  session = null;
  setCsrfToken(null);
  chat.forgetChatKey(null, { revoke: false });
  renderHeader();
  route();
  notify('Your session has ended. Sign in again.', 'error');
});

// Internal links navigate without reloading.
document.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[data-link]') : null;
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  clearNotice();
  navigate(url.pathname + url.hash);
});

window.addEventListener('popstate', () => {
  clearNotice();
  route();
});

replace(app(), h('main', { id: 'page-loading', class: 'page' }, loading('Loading Switchyard…')));
boot();
