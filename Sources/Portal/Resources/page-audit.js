// The audit log, newest first: filters by action, actor, UTC days (and, for the
// platform, tenant), 50 entries a page, paged forward with next_cursor and back with a
// stack of the cursors seen.

import { api, query, tenantUsers, allTenants } from './api.js';
import { h, replace, timeEl, addDays, isDay, roleLabel, humanize } from './dom.js';
import { pageHeader, card, field, table, td, loading, errorBox, button } from './ui.js';

const ACTIONS = [
  'tenant_created', 'limits_changed', 'pinning_changed', 'key_created', 'key_revoked', 'budget_changed', 'budget_cleared',
  'webhook_created', 'webhook_deleted', 'provider_key_added', 'provider_key_drained', 'provider_key_retired',
  'provider_key_enabled', 'provider_key_disabled', 'user_created', 'user_invited', 'invite_revoked', 'invite_accepted',
  'user_removed', 'login', 'login_failed', 'logout', 'access_token_created', 'access_token_revoked',
];
const PAGE_SIZE = 50;

export function render(main, ctx) {
  const { session } = ctx;
  const platform = session.role === 'system_admin';
  let people = new Map();
  let tenants = new Map();
  let filters = {};
  let cursors = []; // the cursor of each page before the current one
  let current = null; // the cursor of the current page (null: the first)
  let next = null;
  let loadToken = 0;

  main.append(pageHeader('Audit log', platform
    ? 'Every change made through the management API, on every tenant, newest first.'
    : `Every change made in ${session.tenantName}, newest first.`));

  const action = h('input', { type: 'text', id: 'audit-action', list: 'audit-actions', placeholder: 'any action', autocomplete: 'off' });
  const actor = h('input', { type: 'text', id: 'audit-actor', placeholder: 'a user id, admin-token or switchyard', autocomplete: 'off' });
  const from = h('input', { type: 'date', id: 'audit-from' });
  const to = h('input', { type: 'date', id: 'audit-to' });
  const tenantInput = platform ? h('input', { type: 'text', id: 'audit-tenant', list: 'audit-tenants', placeholder: 'every tenant', autocomplete: 'off' }) : null;
  const tenantList = platform ? h('datalist', { id: 'audit-tenants' }) : null;
  const apply = h('button', { type: 'submit', id: 'audit-apply', class: 'btn btn-primary' }, 'Apply');
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  main.append(card(null, { class: 'toolbar-card' },
    h('form', { class: 'filter-form', novalidate: true, onsubmit: applyFilters },
      platform ? field('Tenant', tenantInput) : null,
      field('Action', action),
      field('Actor', actor),
      field('From (UTC day)', from),
      field('To (UTC day, included)', to),
      h('div', { class: 'field field-action' }, apply),
      h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
      tenantList),
    problem));

  const listArea = h('div', null, loading('Loading the audit log…'));
  const prev = button('← Newer', { id: 'audit-prev', disabled: true, onclick: goBack });
  const nextButton = button('Older →', { id: 'audit-next', disabled: true, onclick: goForward });
  const pageLabel = h('span', { class: 'muted pager-label', 'aria-live': 'polite' });
  main.append(h('section', { class: 'card' }, listArea, h('div', { class: 'pager' }, prev, pageLabel, nextButton)));

  start();

  async function start() {
    const lookups = [];
    if (session.isOrgAdmin) lookups.push(tenantUsers(session.tenantId).then((map) => { people = map; }).catch(() => {}));
    if (platform) {
      lookups.push(api.get('/admin/v1/users').then((answer) => {
        for (const user of answer.data || []) people.set(user.id, user);
      }).catch(() => {}));
      lookups.push(allTenants().then((map) => {
        tenants = map;
        replace(tenantList, [...map.values()].map((t) => h('option', { value: t.name }, t.id)));
      }).catch(() => {}));
    }
    await Promise.all(lookups);
    load();
  }

  function tenantId(text) {
    const value = text.trim();
    if (!value) return '';
    if (tenants.has(value)) return value;
    for (const tenant of tenants.values()) if (tenant.name === value) return tenant.id;
    return value;
  }

  function applyFilters(event) {
    event.preventDefault();
    problem.hidden = true;
    for (const [input, label] of [[from, 'start'], [to, 'end']]) {
      if (input.value && !isDay(input.value)) return showProblem(`The ${label} day is not a valid date.`);
    }
    if (from.value && to.value && from.value > to.value) return showProblem('The start day must not be after the end day.');
    filters = {
      tenant: platform ? tenantId(tenantInput.value) : session.tenantId,
      action: action.value.trim(),
      actor: actor.value.trim(),
      from: from.value ? `${from.value}T00:00:00Z` : '',
      to: to.value ? `${addDays(to.value, 1)}T00:00:00Z` : '',
    };
    cursors = [];
    current = null;
    if (platform && filters.tenant && tenants.has(filters.tenant)) {
      // Names for the people of the tenant looked at.
      tenantUsers(filters.tenant).then((map) => {
        for (const [id, user] of map) people.set(id, user);
      }).catch(() => {}).finally(load);
      return;
    }
    load();
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = false;
  }

  async function load() {
    const token = ++loadToken;
    prev.disabled = true;
    nextButton.disabled = true;
    const params = { ...filters, limit: PAGE_SIZE, cursor: current };
    if (!platform) params.tenant = session.tenantId;
    try {
      const answer = await api.get('/admin/v1/audit' + query(params));
      if (token !== loadToken) return;
      next = answer.next_cursor || null;
      draw(answer.data || []);
      prev.disabled = cursors.length === 0;
      nextButton.disabled = !next;
      pageLabel.textContent = `Page ${cursors.length + 1}`;
    } catch (error) {
      if (token !== loadToken) return;
      replace(listArea, errorBox(error));
      prev.disabled = cursors.length === 0;
      pageLabel.textContent = '';
    }
  }

  function goForward() {
    if (!next) return;
    cursors.push(current);
    current = next;
    load();
  }

  function goBack() {
    if (!cursors.length) return;
    current = cursors.pop();
    load();
  }

  function actorCell(entryActor) {
    const a = entryActor || {};
    const person = people.get(a.id);
    return h('div', { class: 'actor' },
      h('span', { class: 'actor-id', title: a.id }, person ? person.name || person.email : a.id),
      person ? h('code', { class: 'actor-raw' }, a.id) : null,
      h('span', { class: 'actor-meta' }, humanize(a.kind), a.role ? ` · ${roleLabel(a.role)}` : ''));
  }

  function payloadCell(payload) {
    if (payload === null || payload === undefined) return h('span', { class: 'muted' }, '—');
    return h('details', { class: 'payload' }, h('summary', null, 'Payload'), h('pre', null, JSON.stringify(payload, null, 2)));
  }

  function draw(entries) {
    const columns = [
      { label: 'At' }, { label: 'Actor' }, { label: 'Action' }, { label: 'Target' },
      ...(platform ? [{ label: 'Tenant' }] : []), { label: 'Request id' }, { label: 'Details' },
    ];
    replace(listArea, table({
      id: 'audit-table',
      caption: 'Audit entries',
      columns,
      rows: entries.map((entry) => h('tr', { dataset: { auditId: entry.id } },
        td(timeEl(entry.at, { seconds: true }), 'audit-at nowrap'),
        td(actorCell(entry.actor), 'audit-actor'),
        td(h('code', { class: ['action-code', entry.action === 'login_failed' && 'failed'] }, entry.action), 'audit-action'),
        td(entry.target ? h('code', { class: 'wrap' }, entry.target) : h('span', { class: 'muted' }, '—'), 'audit-target'),
        platform ? td(entry.tenant_id ? (tenants.get(entry.tenant_id)?.name || entry.tenant_id) : h('span', { class: 'muted' }, 'platform'), 'audit-tenant') : null,
        td(entry.request_id ? h('code', null, entry.request_id) : h('span', { class: 'muted' }, '—'), 'audit-request'),
        td(h('div', { class: 'audit-details' },
          entry.source_address ? h('span', { class: 'muted', title: 'Source address' }, entry.source_address) : null,
          payloadCell(entry.payload)), 'audit-payload'))),
      empty: Object.values(filters).some(Boolean) ? 'No entries match these filters.' : 'No audit entries yet.',
    }));
  }
}

