// The org's people (org admins): its users, open invites, and inviting someone by email.

import { api, seg, forgetLookups } from './api.js';
import { h, replace, timeEl, roleLabel } from './dom.js';
import {
  pageHeader, card, field, table, td, loading, errorBox, confirmDialog, notify, errorText, button, badge, copyButton,
} from './ui.js';

export function render(main, ctx) {
  const { session } = ctx;
  const base = `/admin/v1/tenants/${seg(session.tenantId)}`;

  main.append(pageHeader('Users', `The people of ${session.tenantName}, and the invites not yet accepted.`));

  // ---- invite
  const email = h('input', { type: 'email', id: 'invite-email', required: true, autocomplete: 'off', placeholder: 'name@example.com' });
  const role = h('select', { id: 'invite-role' },
    h('option', { value: 'org_user' }, 'Org user'),
    h('option', { value: 'org_admin' }, 'Org admin'));
  const submit = h('button', { type: 'submit', id: 'invite-submit', class: 'btn btn-primary' }, 'Send invite');
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const resultArea = h('div');
  main.append(card('Invite someone', null,
    h('form', { class: 'form-row', novalidate: true, onsubmit: inviteSomeone },
      field('Email', email, null, { class: 'grow' }),
      field('Role', role, 'Admins also manage users, budget and audit.'),
      h('div', { class: 'field field-action' }, submit)),
    problem,
    resultArea));

  const usersArea = h('div', null, loading('Loading users…'));
  const invitesArea = h('div', null, loading('Loading invites…'));
  main.append(card('Members', null, usersArea));
  main.append(card('Open invites', null, invitesArea));
  loadUsers();
  loadInvites();

  async function loadUsers() {
    try {
      const answer = await api.get(`${base}/users`);
      const list = (answer.data || []).slice().sort((a, b) => String(a.name || a.email).localeCompare(String(b.name || b.email)));
      replace(usersArea, table({
        id: 'users-table',
        caption: 'Users',
        columns: [{ label: 'Name' }, { label: 'Email' }, { label: 'Role' }, { label: 'Joined' }, { label: '', class: 'actions' }],
        rows: list.map((user) => {
          const self = user.id === session.user.id;
          return h('tr', { dataset: { userId: user.id } },
            td([user.name, self ? h('span', { class: 'muted' }, ' (you)') : null], 'user-name-cell cell-strong'),
            td(user.email, 'user-email'),
            td(badge(roleLabel(user.role), user.role), 'user-role-cell'),
            td(timeEl(user.created_at), 'user-joined'),
            td(self ? null : button('Remove', { class: 'user-remove btn-small', 'aria-label': `Remove ${user.email}`, onclick: () => removeUser(user) }, 'danger'), 'actions'));
        }),
        empty: 'No users yet.',
      }));
    } catch (error) {
      replace(usersArea, errorBox(error));
    }
  }

  async function loadInvites() {
    try {
      const answer = await api.get(`${base}/invites`);
      const list = (answer.data || []).slice().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
      replace(invitesArea, table({
        id: 'invites-table',
        caption: 'Open invites',
        columns: [{ label: 'Email' }, { label: 'Role' }, { label: 'Sent' }, { label: 'Expires' }, { label: '', class: 'actions' }],
        rows: list.map((invite) => h('tr', { dataset: { inviteId: invite.id } },
          td(invite.email, 'invite-email-cell cell-strong'),
          td(badge(roleLabel(invite.role), invite.role)),
          td(timeEl(invite.created_at)),
          td(timeEl(invite.expires_at), 'invite-expires'),
          td(button('Revoke', { class: 'invite-revoke btn-small', 'aria-label': `Revoke the invite of ${invite.email}`, onclick: () => revokeInvite(invite) }, 'danger'), 'actions'))),
        empty: 'No open invites.',
      }));
    } catch (error) {
      replace(invitesArea, errorBox(error));
    }
  }

  async function inviteSomeone(event) {
    event.preventDefault();
    problem.hidden = true;
    const address = email.value.trim();
    if (!address || !address.includes('@')) {
      problem.textContent = 'Enter the email address to invite.';
      problem.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Inviting…';
    try {
      const invite = await api.post(`${base}/invites`, { email: address, role: role.value });
      email.value = '';
      showInvite(invite);
      await loadInvites();
    } catch (error) {
      problem.textContent = errorText(error);
      problem.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Send invite';
    }
  }

  function showInvite(invite) {
    let mail;
    if (invite.mailed === true) mail = h('p', { id: 'invite-mailed', class: 'ok' }, `The invite was mailed to ${invite.email}.`);
    else if (invite.mailed === false) mail = h('p', { id: 'invite-mailed', class: 'warning' }, `Mailing the invite failed${invite.mail_error ? `: ${invite.mail_error}` : ''}. Send the link yourself.`);
    else mail = h('p', { id: 'invite-mailed', class: 'muted' }, 'No mail server is configured, so nothing was mailed: send the link yourself.');
    const link = h('code', { id: 'invite-link', class: 'secret' }, invite.accept_url);
    replace(resultArea, h('div', { class: 'panel panel-success one-time', role: 'status' },
      h('h3', null, `${invite.email} is invited as ${roleLabel(invite.role)}`),
      h('p', { class: 'one-time-label' }, 'Accept link (works once, until ', timeEl(invite.expires_at), '):'),
      h('div', { class: 'one-time-value' }, link, copyButton(() => link.textContent, { id: 'invite-link-copy' })),
      mail,
      h('p', { class: 'hint' }, 'The link is shown only now; anyone who has it can join your organisation.')));
  }

  async function removeUser(user) {
    const yes = await confirmDialog({
      title: `Remove ${user.name || user.email}?`,
      message: 'Their sessions, access tokens and tenant keys stop working at once. This cannot be undone.',
      confirmLabel: 'Remove user',
      danger: true,
    });
    if (!yes) return;
    try {
      await api.del(`${base}/users/${seg(user.id)}`);
      forgetLookups();
      notify(`${user.email} was removed.`, 'success');
      await loadUsers();
    } catch (error) {
      notify(errorText(error), 'error');
    }
  }

  async function revokeInvite(invite) {
    try {
      await api.del(`${base}/invites/${seg(invite.id)}`);
      notify(`The invite of ${invite.email} was revoked.`, 'success');
      await loadInvites();
    } catch (error) {
      notify(errorText(error), 'error');
    }
  }
}
