// Hosted chat: talks to the tenant's models through the inference API with a short-lived
// tenant key minted for this browser tab ("Hosted chat", one hour, kept in
// sessionStorage per user and revoked on sign-out). Answers stream over SSE, read with
// fetch + a reader, rendered as markdown from the accumulated text on every chunk.

import { api, seg, errorFromBody, ApiError, parseJSON } from './api.js';
import { h, replace, fmtDateTime } from './dom.js';
import { pageHeader, field, button, errorText } from './ui.js';
import { renderMarkdown } from './markdown.js';

/** The name every hosted-chat key has, by which sign-out finds them all. */
const KEY_NAME = 'Hosted chat';
const STORE = 'switchyard.chatKey';
const MODEL_STORE = 'switchyard.chatModel';
const KEY_LIFETIME_MS = 60 * 60 * 1000;
const RENEW_BEFORE_MS = 5 * 60 * 1000;

// ---------------------------------------------------------------- the tab's key

function readStore() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORE) || '{}');
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

function writeStore(store) {
  if (Object.keys(store).length) sessionStorage.setItem(STORE, JSON.stringify(store));
  else sessionStorage.removeItem(STORE);
}

function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let minting = null;

/** The tab's chat key for the signed-in user: reused until 5 minutes before it expires. */
export async function chatKey(session, { fresh = false } = {}) {
  const userId = session.user.id;
  const store = readStore();
  const mine = store[userId];
  if (!fresh && mine && mine.key && Date.parse(mine.expires_at) - Date.now() > RENEW_BEFORE_MS) return mine;
  if (minting) return minting;
  minting = (async () => {
    try {
      const created = await api.post(`/admin/v1/tenants/${seg(session.tenantId)}/keys`, {
        name: KEY_NAME,
        expires_at: rfc3339(new Date(Date.now() + KEY_LIFETIME_MS)),
      });
      const key = { id: created.id, key: created.key, expires_at: created.expires_at };
      const latest = readStore();
      const old = latest[userId];
      latest[userId] = key;
      writeStore(latest);
      if (old && old.id && old.id !== key.id) api.del(`/admin/v1/keys/${seg(old.id)}`).catch(() => {});
      return key;
    } finally {
      minting = null;
    }
  })();
  return minting;
}

/** Drops the tab's chat key (revoking it first when asked and signed in). */
export async function forgetChatKey(session, { revoke = false } = {}) {
  if (revoke && session && session.user && session.tenantId) {
    // Every tab mints its own: revoke all of the user's hosted-chat keys still active,
    // not only this tab's, so none outlives the sign-out.
    const listed = await api.get(`/admin/v1/tenants/${seg(session.tenantId)}/keys`);
    const open = (listed.data || []).filter((key) =>
      key.name === KEY_NAME && key.status === 'active' && key.user_id === session.user.id);
    await Promise.all(open.map((key) => api.del(`/admin/v1/keys/${seg(key.id)}`)));
  }
  sessionStorage.removeItem(STORE);
}

// ---------------------------------------------------------------- the page

export function render(main, ctx) {
  const { session } = ctx;
  const tenant = session.tenantId;
  const base = `/tenants/${seg(tenant)}/v1`;
  let conversation = []; // {role, content}
  let streaming = null; // {controller, message}

  main.append(pageHeader('Chat', 'Try the models your organisation’s tier includes. Every request is metered like any other.'));

  const model = h('select', { id: 'chat-model', disabled: true }, h('option', { value: '' }, 'Loading models…'));
  const system = h('textarea', { id: 'chat-system', rows: 5, placeholder: 'e.g. You are a concise assistant.' });
  const temperature = h('input', { type: 'number', id: 'chat-temperature', min: 0, max: 2, step: 0.1, value: '1' });
  const keyNote = h('p', { class: 'hint', id: 'chat-key-note' });
  const log = h('div', { id: 'chat-log', class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' },
    h('p', { class: 'chat-empty' }, 'Ask anything to start a conversation.'));
  const input = h('textarea', { id: 'chat-input', rows: 3, placeholder: 'Message — Ctrl+Enter (⌘+Enter) to send' });
  const send = h('button', { type: 'submit', id: 'chat-send', class: 'btn btn-primary', disabled: true }, 'Send');
  const stop = button('Stop', { id: 'chat-stop', disabled: true, onclick: stopStreaming });
  const clear = button('New conversation', { id: 'chat-clear', onclick: newConversation });
  const status = h('p', { id: 'chat-status', class: 'chat-status', 'aria-live': 'polite' }, 'Preparing…');

  main.append(h('div', { class: 'chat-layout' },
    h('aside', { class: 'card chat-settings', 'aria-label': 'Chat settings' },
      h('h2', { class: 'card-title' }, 'Settings'),
      field('Model', model),
      field('System prompt', system, 'Sent first, before the conversation. Optional.'),
      field('Temperature', temperature, 'From 0 (focused) to 2 (varied).'),
      keyNote),
    h('section', { class: 'card chat-main' },
      log,
      h('form', { class: 'chat-compose', onsubmit: (event) => { event.preventDefault(); sendMessage(); } },
        h('label', { for: 'chat-input', class: 'sr-only' }, 'Message'),
        input,
        h('div', { class: 'chat-actions' }, status, h('div', { class: 'button-row' }, clear, stop, send))))));

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendMessage();
    }
  });
  input.addEventListener('input', updateSend);
  model.addEventListener('change', () => {
    if (model.value) sessionStorage.setItem(MODEL_STORE, model.value);
    updateSend();
  });

  prepare();

  function setStatus(text, kind = '') {
    status.textContent = text;
    status.className = `chat-status${kind ? ` chat-status-${kind}` : ''}`;
  }

  function updateSend() {
    send.disabled = Boolean(streaming) || !model.value || !input.value.trim();
  }

  function describeKey(key) {
    keyNote.textContent = `Uses a temporary key “Hosted chat” (${key.key.slice(0, 12)}…) valid until ${fmtDateTime(key.expires_at)}, revoked when you sign out.`;
  }

  async function inferenceFetch(path, init, retried = false) {
    const key = await chatKey(session, { fresh: retried });
    describeKey(key);
    const response = await fetch(base + path, {
      ...init,
      credentials: 'omit',
      headers: { ...(init.headers || {}), authorization: `Bearer ${key.key}` },
    });
    if (response.status === 401 && !retried) {
      // The key was revoked or expired elsewhere: mint another once.
      await response.body?.cancel();
      return inferenceFetch(path, init, true);
    }
    return response;
  }

  async function readError(response) {
    const text = await response.text();
    let body = null;
    try {
      body = parseJSON(text);
    } catch {
      // not JSON
    }
    return errorFromBody(body, response.status, `The server answered ${response.status}.`);
  }

  async function prepare() {
    try {
      const response = await inferenceFetch('/models', { method: 'GET', headers: { accept: 'application/json' } });
      if (!response.ok) throw await readError(response);
      const answer = await response.json();
      // The API's order, with embedding models (which cannot chat) last.
      const all = (answer.data || []).map((m) => m.id);
      const ids = [...all.filter((id) => !/embed/i.test(id)), ...all.filter((id) => /embed/i.test(id))];
      if (!ids.length) {
        replace(model, h('option', { value: '' }, 'No models available'));
        setStatus('Your tier includes no models.', 'error');
        return;
      }
      replace(model, ids.map((id) => h('option', { value: id }, id)));
      const remembered = sessionStorage.getItem(MODEL_STORE);
      model.value = remembered && ids.includes(remembered) ? remembered : ids[0];
      model.disabled = false;
      setStatus('Ready.');
      updateSend();
      input.focus();
    } catch (error) {
      replace(model, h('option', { value: '' }, 'Models unavailable'));
      setStatus(errorText(error), 'error');
    }
  }

  function scrollToEnd(force = false) {
    const nearEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    if (force || nearEnd) log.scrollTop = log.scrollHeight;
  }

  function addMessage(role, text, modelName) {
    log.querySelector('.chat-empty')?.remove();
    const content = h('div', { class: 'content' });
    if (role === 'user') content.textContent = text;
    const message = h('div', { class: ['message', role] },
      h('div', { class: 'message-head' },
        h('span', { class: 'message-role' }, role === 'user' ? 'You' : 'Assistant'),
        modelName ? h('span', { class: 'message-model' }, modelName) : null,
        h('span', { class: 'message-state' })),
      content);
    log.appendChild(message);
    scrollToEnd(true);
    return message;
  }

  function setStreaming(active) {
    stop.disabled = !active;
    updateSend();
  }

  async function sendMessage() {
    const text = input.value.trim();
    if (!text || streaming) return;
    if (!model.value) {
      setStatus('Choose a model first.', 'error');
      return;
    }
    const temp = Number(temperature.value === '' ? 1 : temperature.value);
    if (!(temp >= 0 && temp <= 2)) {
      setStatus('The temperature must be between 0 and 2.', 'error');
      temperature.focus();
      return;
    }
    const convo = conversation;
    convo.push({ role: 'user', content: text });
    addMessage('user', text);
    input.value = '';
    const modelName = model.value;
    const message = addMessage('assistant', '', modelName);
    const content = message.querySelector('.content');
    const state = message.querySelector('.message-state');
    message.classList.add('streaming');
    content.appendChild(h('span', { class: 'typing', 'aria-label': 'Waiting for the answer' }, h('span'), h('span'), h('span')));
    const controller = new AbortController();
    const turn = { controller, message };
    streaming = turn;
    setStreaming(true);
    setStatus('Streaming…', 'busy');

    let text_ = '';
    let frame = 0;
    const draw = () => {
      frame = 0;
      replace(content, renderMarkdown(text_));
      scrollToEnd();
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(draw);
    };

    let outcome = 'failed';
    let failure = null;
    try {
      const messages = [];
      if (system.value.trim()) messages.push({ role: 'system', content: system.value });
      messages.push(...convo);
      const response = await inferenceFetch('/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ model: modelName, messages, temperature: temp, stream: true }),
        signal: controller.signal,
      });
      const requestId = response.headers.get('x-request-id');
      if (requestId) message.dataset.requestId = requestId;
      if (!response.ok) throw await readError(response);
      if (!response.body) throw new ApiError('The answer has no body to stream.');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) {
          buffer += decoder.decode();
        } else {
          buffer += decoder.decode(chunk.value, { stream: true });
        }
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = chunk.done ? '' : lines.pop();
        for (const line of lines) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).replace(/^ /, '');
          if (data.trim() === '[DONE]') {
            done = true;
            break;
          }
          let event;
          try {
            event = JSON.parse(data);
          } catch {
            continue;
          }
          if (event && event.error) throw errorFromBody(event, response.status);
          const delta = event?.choices?.[0]?.delta?.content;
          if (typeof delta === 'string' && delta) {
            text_ += delta;
            schedule();
          }
        }
        if (chunk.done) break;
      }
      if (done) {
        outcome = 'done';
        reader.cancel().catch(() => {});
      } else {
        throw new ApiError('The answer ended before it was complete.');
      }
    } catch (error) {
      if (error && error.name === 'AbortError') outcome = 'stopped';
      else failure = error;
    }

    if (frame) cancelAnimationFrame(frame);
    if (streaming === turn) streaming = null;
    if (convo !== conversation) return; // a new conversation was started meanwhile
    draw();
    message.classList.remove('streaming');
    message.classList.add(outcome);
    if (outcome === 'done') {
      state.textContent = '';
      setStatus('Done.');
    } else if (outcome === 'stopped') {
      state.textContent = 'stopped';
      setStatus('Stopped.');
    } else {
      state.textContent = 'failed';
      const text = errorText(failure);
      message.appendChild(h('p', { class: 'message-error', role: 'alert' }, text));
      setStatus(text, 'error');
    }
    if ((outcome === 'done' || outcome === 'stopped') && text_) convo.push({ role: 'assistant', content: text_ });
    setStreaming(false);
    scrollToEnd();
  }

  function stopStreaming() {
    if (streaming) streaming.controller.abort();
  }

  function newConversation() {
    stopStreaming();
    streaming = null;
    conversation = [];
    replace(log, h('p', { class: 'chat-empty' }, 'Ask anything to start a conversation.'));
    setStreaming(false);
    setStatus('New conversation.');
    input.focus();
  }

  return () => stopStreaming();
}
