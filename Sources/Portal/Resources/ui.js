// Shared widgets: the notice area, the confirmation dialog, tables, form fields, copy
// buttons, loading and empty states, and the UTC day-range picker of the reports.

import { h, replace, todayUTC, addDays, isDay, fmtDay } from './dom.js';

// ---------------------------------------------------------------- notices

let noticeTimer = null;

/** Shows a message in #notice: kind is 'error', 'success' or 'info'. Errors stay until dismissed. */
export function notify(message, kind = 'info') {
  const area = document.getElementById('notice');
  if (!area) return;
  clearTimeout(noticeTimer);
  const text = message instanceof Error ? message.message : String(message);
  const close = h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss', onclick: clearNotice }, '×');
  replace(area, h('div', { class: ['notice', `notice-${kind}`], role: kind === 'error' ? 'alert' : 'status' }, h('span', { class: 'notice-text' }, text), close));
  area.hidden = false;
  if (kind !== 'error') noticeTimer = setTimeout(clearNotice, 6000);
}

export function clearNotice() {
  clearTimeout(noticeTimer);
  const area = document.getElementById('notice');
  if (area) {
    area.replaceChildren();
    area.hidden = true;
  }
}

/** An error as it is shown: always the API's message. */
export function errorText(error) {
  if (!error) return 'Something went wrong.';
  return error.message || String(error);
}

// ---------------------------------------------------------------- confirmation

/**
 * Asks in <dialog id="confirm-dialog"> (buttons #confirm-yes and #confirm-no).
 * Resolves true when confirmed, false when cancelled (No, Escape).
 */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  document.getElementById('confirm-dialog')?.remove();
  return new Promise((resolve) => {
    const yes = h('button', { type: 'button', id: 'confirm-yes', class: ['btn', danger ? 'btn-danger' : 'btn-primary'] }, confirmLabel);
    const no = h('button', { type: 'button', id: 'confirm-no', class: 'btn btn-secondary' }, 'Cancel');
    const dialog = h('dialog', { id: 'confirm-dialog', class: 'dialog', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title', class: 'dialog-title' }, title),
      message ? h('p', { class: 'dialog-message' }, message) : null,
      h('div', { class: 'dialog-actions' }, no, yes));
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    };
    yes.addEventListener('click', () => finish(true));
    no.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    dialog.addEventListener('close', () => finish(false));
    document.body.appendChild(dialog);
    dialog.showModal();
    no.focus();
  });
}

// ---------------------------------------------------------------- layout pieces

/** The page's title bar: a heading, an optional line under it, and actions on the right. */
export function pageHeader(title, subtitle, ...actions) {
  return h('div', { class: 'page-header' },
    h('div', { class: 'page-heading' }, h('h1', null, title), subtitle ? h('p', { class: 'page-subtitle' }, subtitle) : null),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

/** A card: a section with a heading. */
export function card(title, attrs, ...children) {
  return h('section', { ...(attrs || {}), class: ['card', attrs && attrs.class] },
    title ? h('h2', { class: 'card-title' }, title) : null, children);
}

/** A labelled form field: <label for> + the control + an optional hint. */
export function field(labelText, control, hint, attrs) {
  const hintId = hint && control.id ? `${control.id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { ...(attrs || {}), class: ['field', attrs && attrs.class] },
    h('label', { for: control.id }, labelText),
    control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}

export function button(label, attrs = {}, kind = 'secondary') {
  return h('button', { type: 'button', ...attrs, class: ['btn', `btn-${kind}`, attrs.class] }, label);
}

export function loading(text = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function emptyState(text, attrs = {}) {
  return h('p', { ...attrs, class: ['empty', attrs.class] }, text);
}

/** A problem inside a section: the API's message. */
export function errorBox(error, attrs = {}) {
  return h('div', { ...attrs, class: ['error-box', attrs.class], role: 'alert' }, errorText(error));
}

/** A status pill: badge('active') gets class badge-active. */
export function badge(text, kind = text) {
  return h('span', { class: ['badge', `badge-${String(kind).replace(/[^a-z0-9_-]/gi, '')}`] }, String(text).replaceAll('_', ' '));
}

// ---------------------------------------------------------------- tables

/**
 * A table. columns: [{label, numeric?, class?}]; rows: <tr> elements; footer: <tr>s.
 * Empty rows → one row spanning every column with `empty` as its text.
 */
export function table({ id, columns, rows, footer, empty, caption, attrs = {} }) {
  const head = h('thead', null, h('tr', null, columns.map((column) =>
    h('th', { scope: 'col', class: [column.numeric && 'num', column.class] }, column.label))));
  const body = h('tbody', null, rows.length ? rows : h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length, class: 'empty' }, empty || 'Nothing to show.')));
  return h('div', { class: 'table-wrap' },
    h('table', { ...attrs, id, class: ['table', attrs.class] },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      head, body, footer && footer.length ? h('tfoot', null, footer) : null));
}

/** A cell; numeric ones are right-aligned with tabular figures. */
export function td(content, cls, attrs = {}) {
  return h('td', { ...attrs, class: cls }, content);
}

export function num(content, cls, attrs = {}) {
  return h('td', { ...attrs, class: ['num', cls] }, content);
}

// ---------------------------------------------------------------- copying

/** A button that copies text() to the clipboard and says "Copied". */
export function copyButton(text, attrs = {}, label = 'Copy') {
  const btn = button(label, {
    ...attrs,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(typeof text === 'function' ? text() : text);
        btn.textContent = 'Copied';
        btn.classList.add('copied');
      } catch {
        btn.textContent = 'Copy failed — select the text and copy it';
      }
      setTimeout(() => {
        btn.textContent = label;
        btn.classList.remove('copied');
      }, 2500);
    },
  });
  return btn;
}

/** A secret or link shown once: a code element (with `id`), a copy button (`copyId`) and a note. */
export function oneTimeValue({ id, value, copyId, note, label }) {
  const code = h('code', { id, class: 'secret' }, value);
  return h('div', { class: 'one-time' },
    label ? h('p', { class: 'one-time-label' }, label) : null,
    h('div', { class: 'one-time-value' }, code, copyButton(() => code.textContent, { id: copyId })),
    note ? h('p', { class: 'warning' }, note) : null);
}

// ---------------------------------------------------------------- report ranges

/**
 * The UTC day range of a report: #<prefix>-from, #<prefix>-to (both days included) and
 * #<prefix>-apply. Defaults to the last `days` days. onApply({from, to}) runs on Apply
 * (and Enter); onChange on every valid edit.
 */
export function dateRange({ prefix, days = 30, onApply, onChange }) {
  const to = todayUTC();
  const from = addDays(to, -(days - 1));
  const fromInput = h('input', { type: 'date', id: `${prefix}-from`, value: from, max: to, required: true });
  const toInput = h('input', { type: 'date', id: `${prefix}-to`, value: to, required: true });
  const apply = h('button', { type: 'submit', id: `${prefix}-apply`, class: 'btn btn-primary' }, 'Apply');
  const problem = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const presets = [7, 30, 90].map((n) => button(`${n} days`, {
    class: 'btn-small',
    onclick: () => {
      toInput.value = todayUTC();
      fromInput.value = addDays(toInput.value, -(n - 1));
      submit();
    },
  }));

  function value() {
    const range = { from: fromInput.value, to: toInput.value };
    if (!isDay(range.from) || !isDay(range.to)) return { error: 'Choose a start and an end day.' };
    if (range.from > range.to) return { error: 'The start day must not be after the end day.' };
    return range;
  }
  function check() {
    const range = value();
    problem.hidden = !range.error;
    problem.textContent = range.error || '';
    return range;
  }
  function submit(event) {
    event?.preventDefault();
    const range = check();
    if (!range.error) onApply(range);
  }
  for (const input of [fromInput, toInput]) {
    input.addEventListener('change', () => {
      const range = check();
      if (!range.error) onChange?.(range);
    });
  }
  const form = h('form', { class: 'range-form', onsubmit: submit, novalidate: true },
    field('From (UTC day)', fromInput),
    field('To (UTC day, included)', toInput),
    h('div', { class: 'range-actions' }, apply, h('span', { class: 'range-presets' }, presets)),
    problem);
  return { element: form, value, describe: (range) => `${fmtDay(range.from)} – ${fmtDay(range.to)} (UTC)` };
}
