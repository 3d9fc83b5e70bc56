// Accepting an invite: /portal/invite#<token>. No sign-in needed: the name and password
// go to POST /auth/invites/{token}/accept, which signs the new user in (cookie).

import { api, seg } from './api.js';
import { h } from './dom.js';
import { field, errorText } from './ui.js';

const encoder = new TextEncoder();

export function render(main) {
  main.classList.add('page-narrow');
  let token = '';
  try {
    token = decodeURIComponent(location.hash.replace(/^#/, '')).trim();
  } catch {
    token = ''; // a mangled link: shown as incomplete below
  }
  const wrap = h('div', { class: 'auth-card card' },
    h('div', { class: 'auth-brand' }, h('img', { src: '/portal/assets/favicon.svg', alt: '', width: 40, height: 40 }), h('span', null, 'Switchyard')),
    h('h1', null, 'Accept your invite'));
  main.append(wrap);

  if (!token) {
    wrap.append(h('p', { class: 'error-box', role: 'alert' },
      'This invite link is incomplete: the part after “#” is missing. Open the whole link from your invite, or ask your admin for a new one.'));
    return;
  }

  const name = h('input', { type: 'text', id: 'invite-name', autocomplete: 'name', required: true, maxlength: 200 });
  const password = h('input', { type: 'password', id: 'invite-password', autocomplete: 'new-password', required: true });
  const again = h('input', { type: 'password', id: 'invite-password-again', autocomplete: 'new-password', required: true });
  const submit = h('button', { type: 'submit', id: 'invite-accept', class: 'btn btn-primary btn-block' }, 'Accept and sign in');
  const problem = h('p', { id: 'invite-error', class: 'form-error', role: 'alert', hidden: true });
  const length = h('span', { class: 'hint', 'aria-live': 'polite' });

  password.addEventListener('input', () => {
    const bytes = encoder.encode(password.value).length;
    length.textContent = password.value ? `${bytes} of 12–72 bytes` : '';
  });

  wrap.append(
    h('p', { class: 'muted' }, 'Choose the name others see and a password for your account.'),
    h('form', { class: 'auth-form', novalidate: true, onsubmit: accept },
      field('Your name', name),
      field('Password', password, 'From 12 to 72 bytes (letters outside ASCII count as 2–4 bytes), without control characters.'),
      length,
      field('Password again', again),
      problem,
      submit));
  setTimeout(() => name.focus(), 0);

  async function accept(event) {
    event.preventDefault();
    problem.hidden = true;
    const bytes = encoder.encode(password.value).length;
    if (!name.value.trim()) return showProblem('Enter your name.');
    if (bytes < 12 || bytes > 72) return showProblem(`The password must be 12 to 72 bytes long; it is ${bytes}.`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(password.value)) return showProblem('The password may not contain control characters.');
    if (password.value !== again.value) return showProblem('The two passwords are not the same.');
    submit.disabled = true;
    submit.textContent = 'Creating your account…';
    try {
      await api.post(`/auth/invites/${seg(token)}/accept`, { name: name.value.trim(), password: password.value }, { session: false });
      password.value = '';
      again.value = '';
      // A fresh document at the portal's start, without the invite token in the history.
      location.replace('/portal/');
    } catch (error) {
      showProblem(errorText(error));
      submit.disabled = false;
      submit.textContent = 'Accept and sign in';
    }
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = false;
  }
}
