// DOM building and formatting helpers. Nothing here ever parses HTML: elements are made
// with createElement / createElementNS, text goes in as text nodes, so data shown on a
// page can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties set after the children are in place (a <select>'s value needs its options).
const LATE_PROPERTIES = new Set(['value', 'checked', 'selected', 'indeterminate']);
const REFUSED = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

function applyAttributes(el, attrs, late) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (REFUSED.has(name)) throw new Error(`h(): '${name}' is not allowed`);
    if (name.startsWith('on')) {
      if (typeof value !== 'function') throw new Error(`h(): '${name}' must be a function`);
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      const classes = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
      if (classes) el.setAttribute('class', classes);
    } else if (name === 'dataset') {
      for (const [key, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[key] = String(v);
    } else if (name === 'text') {
      el.textContent = String(value);
    } else if (LATE_PROPERTIES.has(name)) {
      late.push([name, value]);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
}

/** Appends children: strings and numbers become text nodes, arrays are flattened, null, undefined and false are skipped. */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h('button', {class: 'btn', onclick: fn, id: 'x'}, 'Text', otherNode) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const late = [];
  applyAttributes(el, attrs, late);
  append(el, children);
  for (const [name, value] of late) el[name] = value;
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  const late = [];
  applyAttributes(el, attrs, late);
  append(el, children);
  return el;
}

/** Empties an element and puts new children in. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// ---------------------------------------------------------------- numbers and money

const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** An exact integer from an API value: a number, a decimal string of an integer, a BigInt, or null (0). */
export function big(value) {
  if (value === null || value === undefined || value === '') return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(Math.trunc(value));
  return BigInt(String(value));
}

/** Sums an API field over rows exactly. */
export function sumBig(rows, field) {
  let total = 0n;
  for (const row of rows) total += big(typeof field === 'function' ? field(row) : row[field]);
  return total;
}

/** 1234567 → "1,234,567" in the user's locale (numbers or BigInts). */
export function fmtInt(value) {
  if (value === null || value === undefined) return '—';
  return integerFormat.format(typeof value === 'bigint' ? value : Number(value));
}

/** A compact count for chart axes: 1.2k, 3.4M. */
export function fmtCompact(value) {
  return new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(value);
}

/** 0.1234 → "12.3%". */
export function fmtPercent(fraction, digits = 1) {
  if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return '—';
  return new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: digits }).format(fraction);
}

/** Micro-units as an exact decimal string: 1234567n → "1.234567", -5 → "-0.000005". */
export function microsToDecimal(micros, { trim = false } = {}) {
  const value = big(micros);
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  const whole = magnitude / 1000000n;
  let fraction = (magnitude % 1000000n).toString().padStart(6, '0');
  if (trim) fraction = fraction.replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? '.' + fraction : ''}`;
}

const moneyFormats = new Map();
function moneyFormat(currency) {
  const key = currency || '';
  if (!moneyFormats.has(key)) {
    let format;
    try {
      format = currency
        ? new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 6 })
        : new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 6 });
    } catch {
      format = null; // an unknown currency code: shown as "1.23 XYZ"
    }
    moneyFormats.set(key, format);
  }
  return moneyFormats.get(key);
}

/**
 * Money in micro-units, shown with its currency: 1234567 USD → "$1.234567", 1500000 → "$1.50".
 * The decimal string is built from the integer, and Intl formats decimal strings exactly.
 */
export function fmtMoney(micros, currency) {
  if (micros === null || micros === undefined) return '—';
  const decimal = microsToDecimal(micros);
  const format = moneyFormat(currency);
  if (format) {
    try {
      return format.format(decimal);
    } catch {
      // fall through to the plain form
    }
  }
  const plain = microsToDecimal(micros, { trim: true });
  const [whole, fraction = ''] = plain.split('.');
  return `${whole}.${fraction.padEnd(2, '0')}${currency ? ' ' + currency : ''}`;
}

/** Micro-units as a Number of currency units, for plotting only (never for sums). */
export function microsToNumber(micros) {
  return Number(big(micros)) / 1e6;
}

/**
 * Parses a decimal amount of currency units exactly into integer micro-units:
 * "12.5" → 12500000n. Throws an Error with a readable message for anything else.
 */
export function parseDecimalToMicros(text, what = 'amount') {
  const value = String(text).trim().replace(/^\+/, '');
  const match = /^(\d*)(?:[.,](\d*))?$/.exec(value);
  if (!match || (match[1] === '' && (match[2] ?? '') === '')) {
    throw new Error(`The ${what} must be a decimal number such as 25 or 12.50.`);
  }
  const fraction = match[2] ?? '';
  if (fraction.length > 6) throw new Error(`The ${what} takes at most 6 decimals.`);
  return BigInt(match[1] || '0') * 1000000n + BigInt(fraction.padEnd(6, '0') || '0');
}

/** Token counts of a report row: prompt + completion. */
export function rowTokens(row) {
  return big(row.prompt_tokens) + big(row.completion_tokens);
}

// ---------------------------------------------------------------- dates

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSecondsFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const utcDateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const utcDayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const utcDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** An RFC 3339 time in the user's locale and time zone; "—" for none. */
export function fmtDateTime(value, { seconds = false } = {}) {
  const date = toDate(value);
  if (!date) return '—';
  return (seconds ? dateTimeSecondsFormat : dateTimeFormat).format(date);
}

/** The date part only, in the user's time zone. */
export function fmtDate(value) {
  const date = toDate(value);
  return date ? dateFormat.format(date) : '—';
}

/** A time in UTC, marked as such: "Dec 1, 2026, 12:00 AM UTC". */
export function fmtDateTimeUTC(value) {
  const date = toDate(value);
  return date ? `${utcDateTimeFormat.format(date)} UTC` : '—';
}

/** A UTC day ("2026-11-23") as "Nov 23". */
export function fmtDayShort(day) {
  const date = toDate(`${day}T00:00:00Z`);
  return date ? utcDayFormat.format(date) : day;
}

/** A UTC day ("2026-11-23") as "Nov 23, 2026". */
export function fmtDay(day) {
  const date = toDate(`${day}T00:00:00Z`);
  return date ? utcDateFormat.format(date) : day;
}

/** "3 minutes ago" / "in 2 hours". */
export function fmtRelative(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return '—';
  const seconds = Math.round((date.getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(seconds, 'second');
}

/** A <time> element: the locale's text, the exact time as its title. */
export function timeEl(value, options = {}) {
  const date = toDate(value);
  if (!date) return h('span', { class: 'muted' }, '—');
  const text = options.relative ? fmtRelative(date) : options.utc ? fmtDateTimeUTC(date) : fmtDateTime(date, options);
  return h('time', { datetime: date.toISOString(), title: date.toISOString() }, text);
}

/** Today's UTC day, "2026-11-23". */
export function todayUTC() {
  return new Date().toISOString().slice(0, 10);
}

/** A UTC day plus n days: addDays("2026-11-30", 1) → "2026-12-01". */
export function addDays(day, n) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + n);
  return date.toISOString().slice(0, 10);
}

/** Whether text is a real "YYYY-MM-DD" day. */
export function isDay(text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** Every UTC day from `from` to `to`, both included. */
export function daysBetween(from, to) {
  const days = [];
  for (let day = from; day <= to && days.length < 3700; day = addDays(day, 1)) days.push(day);
  return days;
}

/** The start of a UTC day as RFC 3339: "2026-11-23T00:00:00Z". */
export function dayStart(day) {
  return `${day}T00:00:00Z`;
}

// ---------------------------------------------------------------- words

const ROLE_LABELS = {
  system_admin: 'System admin',
  analyst: 'Analyst',
  org_admin: 'Org admin',
  org_user: 'Org user',
};

export function roleLabel(role) {
  return ROLE_LABELS[role] ?? role ?? '—';
}

/** "cooling_down" → "cooling down". */
export function humanize(text) {
  return String(text ?? '').replaceAll('_', ' ');
}

/** An approximate amount for a chart axis (plotting only): "$1.5k", "$0.0025". */
export function fmtMoneyTick(value, currency) {
  const options = value >= 1000
    ? { notation: 'compact', maximumFractionDigits: 1 }
    : { maximumSignificantDigits: 3 };
  try {
    return new Intl.NumberFormat(undefined, currency ? { ...options, style: 'currency', currency } : options).format(value);
  } catch {
    return new Intl.NumberFormat(undefined, options).format(value);
  }
}
