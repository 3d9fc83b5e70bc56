// Tenant keys: create one (its secret shown once, only in this page's DOM), list them,
// revoke one. Org admins see every key of the org with its owner; org users their own.

import { api, seg, tenantUsers, forgetLookups } from './api.js';
import { h, replace, timeEl, addDays, todayUTC, isDay } from './dom.js';
import {
  pageHeader, card, field, table, td, badge, loading, errorBox, confirmDialog, notify, errorText, oneTimeValue, button,
} from './ui.js';

export function render(main, ctx) {
  const { session } = ctx;
  const tenant = session.tenantId;
  let keys = [];
  let owners = new Map();

  main.append(pageHeader('API keys',
    session.isOrgAdmin ? 'Keys for the inference API. You see every key of your organisation.' : 'Your keys for the inference API.'));

  // ---- create
  const name = h('input', { type: 'text', id: 'key-name', required: true, maxlength: 200, placeholder: 'e.g. production-backend', autocomplete: 'off' });
  const expiry = h('input', { type: 'date', id: 'key-expiry', min: todayUTC() });
  const create = h('button', { type: 'submit', id: 'key-create', class: 'btn btn-primary' }, 'Create key');
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const newKeyArea = h('div', { class: 'new-key-area' });
  main.append(card('Create a key', null,
    h('form', { class: 'form-row', novalidate: true, onsubmit: createKey },
      field('Name', name, null, { class: 'grow' }),
      field('Expires (optional)', expiry, 'At the end of that day, UTC.'),
      h('div', { class: 'field field-action' }, create)),
    problem,
    newKeyArea));

  // ---- list
  const listArea = h('div', null, loading('Loading keys…'));
  main.append(card('Keys', null, listArea));
  load();

  async function load() {
    try {
      const [answer, users] = await Promise.all([
        api.get(`/admin/v1/tenants/${seg(tenant)}/keys`),
        session.isOrgAdmin ? tenantUsers(tenant).catch(() => new Map()) : Promise.resolve(new Map()),
      ]);
      keys = (answer.data || []).slice().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
      owners = users;
      drawList();
    } catch (error) {
      replace(listArea, errorBox(error));
    }
  }

  function ownerText(key) {
    if (!session.isOrgAdmin) return 'you';
    if (!key.user_id) return '—';
    const user = owners.get(key.user_id);
    const own = key.user_id === session.user.id;
    const label = user ? (user.name || user.email) : key.user_id;
    return own ? `${label} (you)` : label;
  }

  function row(key) {
    const owner = session.isOrgAdmin && key.user_id ? owners.get(key.user_id) : null;
    const actions = td(key.status === 'active'
      ? button('Revoke', { class: 'key-revoke btn-small', 'aria-label': `Revoke key ${key.name}`, onclick: () => revoke(key) }, 'danger')
      : null, 'actions');
    return h('tr', { dataset: { keyId: key.id } },
      td(key.name, 'key-name'),
      td(h('code', null, `${key.prefix}…`), 'key-prefix'),
      td(ownerText(key), 'key-owner', owner ? { title: owner.email } : {}),
      td(timeEl(key.created_at), 'key-created'),
      td(key.expires_at ? timeEl(key.expires_at) : h('span', { class: 'muted' }, 'Never'), 'key-expires'),
      td(key.last_used_at ? timeEl(key.last_used_at, { relative: true }) : h('span', { class: 'muted' }, 'Never'), 'key-last-used'),
      td(badge(key.status), 'key-status'),
      actions);
  }

  function drawList() {
    replace(listArea, table({
      id: 'keys-table',
      caption: 'Tenant keys',
      columns: [
        { label: 'Name' }, { label: 'Prefix' }, { label: 'Owner' }, { label: 'Created' }, { label: 'Expires' },
        { label: 'Last used' }, { label: 'Status' }, { label: '', class: 'actions' },
      ],
      rows: keys.map(row),
      empty: 'No keys yet — create one above.',
    }));
  }

  async function createKey(event) {
    event.preventDefault();
    problem.hidden = true;
    const body = { name: name.value.trim() };
    if (!body.name) return showProblem('Give the key a name.');
    if (expiry.value) {
      if (!isDay(expiry.value)) return showProblem('Choose a valid expiry day.');
      if (expiry.value < todayUTC()) return showProblem('The expiry day must be today or later (UTC).');
      body.expires_at = `${addDays(expiry.value, 1)}T00:00:00Z`; // the end of that day, UTC
    }
    create.disabled = true;
    create.textContent = 'Creating…';
    try {
      const created = await api.post(`/admin/v1/tenants/${seg(tenant)}/keys`, body);
      showNewKey(created);
      name.value = '';
      expiry.value = '';
      forgetLookups();
      await load();
    } catch (error) {
      showProblem(errorText(error));
    } finally {
      create.disabled = false;
      create.textContent = 'Create key';
    }
  }

  function showNewKey(created) {
    const panel = h('div', { id: 'new-key', class: 'panel panel-success', role: 'status' },
      h('h3', null, `Key “${created.name}” created`),
      oneTimeValue({
        id: 'new-key-secret',
        value: created.key,
        copyId: 'new-key-copy',
        note: 'Copy it now: this is the only time the key is shown. It is not stored anywhere in your browser and disappears when you leave or reload this page.',
      }),
      button('Done — hide the key', { class: 'btn-small', onclick: () => panel.remove() }));
    replace(newKeyArea, panel);
  }

  async function revoke(key) {
    const yes = await confirmDialog({
      title: `Revoke “${key.name}”?`,
      message: 'Requests made with this key will be refused at once. This cannot be undone.',
      confirmLabel: 'Revoke key',
      danger: true,
    });
    if (!yes) return;
    try {
      const revoked = await api.del(`/admin/v1/keys/${seg(key.id)}`);
      const index = keys.findIndex((k) => k.id === key.id);
      const updated = { ...key, ...revoked, status: revoked?.status || 'revoked' };
      if (index >= 0) keys[index] = updated;
      // The row stays the same element: only its cells change.
      const current = listArea.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"]`);
      if (current) current.replaceChildren(...row(updated).children);
      notify(`Key “${key.name}” revoked.`, 'success');
    } catch (error) {
      notify(errorText(error), 'error');
    }
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = false;
  }
}
