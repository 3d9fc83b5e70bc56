// Sign-in: email and password to POST /auth/login. The answer's token is not kept: the
// session lives in the HttpOnly cookie the server sets; the shell then asks /auth/me.

import { api } from './api.js';
import { h } from './dom.js';
import { field, errorText } from './ui.js';

export function render(main, ctx) {
  main.classList.add('page-narrow');
  const email = h('input', { type: 'email', id: 'signin-email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'signin-password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', id: 'signin-submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const problem = h('p', { id: 'signin-error', class: 'form-error', role: 'alert', hidden: true });

  const form = h('form', { id: 'signin-form', class: 'auth-form', novalidate: true, onsubmit: signIn },
    field('Email', email),
    field('Password', password),
    problem,
    submit);

  main.append(h('div', { class: 'auth-card card' },
    h('div', { class: 'auth-brand' }, h('img', { src: '/portal/assets/favicon.svg', alt: '', width: 40, height: 40 }), h('span', null, 'Switchyard')),
    h('h1', null, 'Sign in'),
    h('p', { class: 'muted' }, 'Use the email and password of your Switchyard account.'),
    form,
    h('p', { class: 'hint' }, 'New here? Ask your organisation’s admin for an invite.')));
  setTimeout(() => email.focus(), 0);

  async function signIn(event) {
    event.preventDefault();
    problem.hidden = true;
    if (!email.value.trim() || !password.value) {
      showProblem('Enter your email and password.');
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      // The answer (its token included) is dropped: the cookie is the session.
      await api.post('/auth/login', { email: email.value.trim(), password: password.value }, { session: false });
      password.value = '';
      await ctx.signedIn();
    } catch (error) {
      showProblem(errorText(error));
      submit.disabled = false;
      submit.textContent = 'Sign in';
      password.select();
    }
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = false;
  }
}
