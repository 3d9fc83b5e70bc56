// The one way the portal talks to Switchyard: same-origin fetches with the session
// cookie, JSON in and out, the CSRF token on every write, and errors that carry the API's
// own message. The CSRF token lives in this module's memory only.

import { addDays, dayStart } from './dom.js';

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** An error answered by the API: `message` is the API's, with its status, type, code and param. */
export class ApiError extends Error {
  constructor(message, { status = 0, type = null, code = null, param = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }
}

/**
 * Parses JSON keeping money exact: every `*_micros` integer comes back as its decimal
 * string as written by the server (JSON numbers above 2^53 would lose digits as Numbers).
 * Use dom.js `big()` to work with them.
 */
export function parseJSON(text) {
  return JSON.parse(text, function reviver(key, value, context) {
    if (typeof value === 'number' && typeof key === 'string' && key.endsWith('_micros')) {
      return context && typeof context.source === 'string' ? context.source : String(value);
    }
    return value;
  });
}

/** The ApiError for an error body `{"error":{...}}` (or anything else) answered with `status`. */
export function errorFromBody(body, status, fallback) {
  const error = body && typeof body === 'object' ? body.error : null;
  if (error && typeof error === 'object' && typeof error.message === 'string' && error.message) {
    return new ApiError(error.message, { status, type: error.type ?? null, code: error.code ?? null, param: error.param ?? null });
  }
  if (typeof error === 'string' && error) return new ApiError(error, { status });
  return new ApiError(fallback || `The server answered ${status}.`, { status });
}

/** Builds "?a=1&b=2" from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

const unauthenticatedListeners = new Set();

/** Called when a request made with the session answers 401: the session has ended. */
export function onUnauthenticated(listener) {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

/** How long a management call may take before the page gives up on it. */
const REQUEST_TIMEOUT_MS = 30000;

/**
 * request('POST', '/admin/v1/…', body, options)
 * - body: undefined for none; anything else (null included) is sent as JSON.
 * - options.signal: an AbortSignal; options.headers: extra headers;
 *   options.session (default true): a 401 means the session ended.
 * Resolves with the parsed JSON (null for 204 or an empty body); throws ApiError.
 */
export async function request(method, path, body, options = {}) {
  const headers = { accept: 'application/json', ...(options.headers || {}) };
  // A call nobody cancels still ends: a server that stops answering is said so.
  const init = { method, credentials: 'same-origin', headers, signal: options.signal || AbortSignal.timeout(REQUEST_TIMEOUT_MS), cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    if (error && error.name === 'TimeoutError') {
      throw new ApiError(`Switchyard did not answer within ${REQUEST_TIMEOUT_MS / 1000} seconds. Try again.`, { status: 0, code: 'timeout' });
    }
    throw new ApiError('Switchyard could not be reached. Check your connection and try again.', { status: 0, code: 'network_error' });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = parseJSON(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    const error = errorFromBody(parsed, response.status, `The server answered ${response.status} ${response.statusText}.`.replace(' .', '.'));
    if (response.status === 401 && options.session !== false) {
      for (const listener of unauthenticatedListeners) listener(error);
    }
    throw error;
  }
  if (parsed === undefined) throw new ApiError('The server answered something that is not JSON.', { status: response.status });
  return parsed;
}

export const api = {
  get: (path, options) => request('GET', path, undefined, options),
  post: (path, body, options) => request('POST', path, body === undefined ? {} : body, options),
  put: (path, body, options) => request('PUT', path, body, options),
  del: (path, options) => request('DELETE', path, undefined, options),
};

/** Encodes one path segment. */
export const seg = (value) => encodeURIComponent(String(value));

/** 404 answers: "none set" for budgets and quotas. */
export function isNotFound(error) {
  return error instanceof ApiError && error.status === 404;
}

/** Every row of a paged list (`data` + `next_cursor`), following cursors up to `maxPages`. */
export async function getAllPages(path, params, { maxPages = 50, signal } = {}) {
  let cursor = null;
  let first = null;
  const data = [];
  for (let page = 0; page < maxPages; page++) {
    const answer = await api.get(path + query({ ...params, cursor }), { signal });
    if (!first) first = answer;
    data.push(...(answer.data || []));
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return { ...first, data, next_cursor: cursor };
}

// ---------------------------------------------------------------- shared look-ups

const lookups = new Map();

/** A GET remembered for 30 s: names of users, keys and tenants shown by several pages. */
function remembered(path) {
  const hit = lookups.get(path);
  if (hit && Date.now() - hit.at < 30000) return hit.promise;
  const promise = api.get(path).catch((error) => {
    lookups.delete(path);
    throw error;
  });
  lookups.set(path, { at: Date.now(), promise });
  return promise;
}

/** Forgets remembered look-ups (after a change to users or keys). */
export function forgetLookups() {
  lookups.clear();
}

/** Map of user id → {name, email, …} of a tenant (org admins and the platform only). */
export async function tenantUsers(tenantId) {
  const answer = await remembered(`/admin/v1/tenants/${seg(tenantId)}/users`);
  return new Map((answer.data || []).map((user) => [user.id, user]));
}

/** The tenant keys the viewer may see (an org user's own). */
export async function tenantKeys(tenantId) {
  const answer = await remembered(`/admin/v1/tenants/${seg(tenantId)}/keys`);
  return answer.data || [];
}

/** Map of tenant id → tenant (the platform's roles only). */
export async function allTenants() {
  const answer = await remembered('/admin/v1/tenants');
  return new Map((answer.data || []).map((tenant) => [tenant.id, tenant]));
}

// ---------------------------------------------------------------- the allocation report

export const ALLOCATION_REPORT = '/admin/v1/reports/allocation';

/** A range of whole UTC days, `to` included, as the report's `[from, to)` window. */
export function reportWindow({ from, to }) {
  return { from: dayStart(from), to: dayStart(addDays(to, 1)) };
}

/** Points `link` at the report for `params` as CSV, downloaded as `name`. */
export function pointAtCsv(link, params, name) {
  link.href = ALLOCATION_REPORT + query({ ...params, format: 'csv', limit: 10000 });
  link.setAttribute('download', name);
}
