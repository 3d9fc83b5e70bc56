// Markdown to DOM nodes, safely: paragraphs, headings, **bold**, *italic*, `code`, fenced
// code blocks, bullet and numbered lists (nested by indentation), block quotes, rules,
// and links to http/https only. Text only ever becomes text nodes, so any HTML in the
// input shows as the literal characters it is. An unclosed fence (a stream still
// arriving) renders as a code block up to the end.

import { h } from './dom.js';

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^(\s*)([-*+])\s+(.*)$/;
const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;

/** Renders markdown text into a DocumentFragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  for (const node of parseBlocks(lines)) fragment.appendChild(node);
  return fragment;
}

function isBlank(line) {
  return /^\s*$/.test(line);
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || BULLET.test(line) || ORDERED.test(line) || QUOTE.test(line) || RULE.test(line);
}

function parseBlocks(lines) {
  const nodes = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${marker[0]}{${marker.length},}\\s*$`).test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence, when there is one
      const code = h('code', fence[2] ? { class: `language-${fence[2].replace(/[^\w-]/g, '')}` } : null, body.join('\n'));
      nodes.push(h('pre', { class: 'md-code' }, code));
      continue;
    }
    if (RULE.test(line)) {
      nodes.push(h('hr'));
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      nodes.push(h(`h${Math.min(6, heading[1].length + 2)}`, { class: 'md-heading' }, inline(heading[2])));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(QUOTE.exec(lines[i++])[1]);
      nodes.push(h('blockquote', null, parseBlocks(quoted)));
      continue;
    }
    if (BULLET.test(line) || ORDERED.test(line)) {
      const [list, next] = parseList(lines, i);
      nodes.push(list);
      i = next;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && !isBlank(lines[i]) && !(paragraph.length && startsBlock(lines[i]))) paragraph.push(lines[i++].trim());
    const p = h('p');
    paragraph.forEach((text, index) => {
      if (index) p.appendChild(h('br'));
      p.appendChild(inline(text));
    });
    nodes.push(p);
  }
  return nodes;
}

function listItem(line) {
  const bullet = BULLET.exec(line);
  if (bullet) return { indent: bullet[1].replace(/\t/g, '    ').length, ordered: false, text: bullet[3] };
  const ordered = ORDERED.exec(line);
  if (ordered) return { indent: ordered[1].replace(/\t/g, '    ').length, ordered: true, start: Number(ordered[2]), text: ordered[3] };
  return null;
}

/** A list starting at lines[start]; items indented deeper than the first nest. */
function parseList(lines, start) {
  const first = listItem(lines[start]);
  const list = h(first.ordered ? 'ol' : 'ul', first.ordered && first.start !== 1 ? { start: first.start } : null);
  let i = start;
  let current = null;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      // A blank line ends the list unless another item (or its continuation) follows.
      const next = lines[i + 1];
      if (next !== undefined && (listItem(next) || (/^\s{2,}\S/.test(next) && current))) {
        i++;
        continue;
      }
      break;
    }
    const item = listItem(line);
    if (item && item.indent < first.indent) break;
    if (item && item.indent > first.indent + 1 && current) {
      const [nested, next] = parseList(lines, i);
      current.appendChild(nested);
      i = next;
      continue;
    }
    if (item) {
      if (item.ordered !== first.ordered) break;
      current = h('li', null, inline(item.text));
      list.appendChild(current);
      i++;
      continue;
    }
    if (current && !startsBlock(line)) {
      // A lazy continuation of the item's text.
      current.appendChild(h('br'));
      current.appendChild(inline(line.trim()));
      i++;
      continue;
    }
    break;
  }
  return [list, i];
}

/** Whether a link target is an absolute http or https URL; returns its normalised form. */
export function safeHref(target) {
  try {
    const url = new URL(target);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function link(text, href) {
  return h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, text);
}

const AUTOLINK = /^https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"\]]/;

/** Inline markdown to a fragment of text nodes and elements. */
function inline(text) {
  const fragment = document.createDocumentFragment();
  let buffer = '';
  const flush = () => {
    if (buffer) fragment.appendChild(document.createTextNode(buffer));
    buffer = '';
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length && /[\\`*_[\]()#+\-.!>~]/.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '`') {
      const ticks = /^`+/.exec(rest)[0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > i) {
        flush();
        fragment.appendChild(h('code', null, text.slice(i + ticks.length, end).replace(/^ (.+) $/, '$1')));
        i = end + ticks.length;
        continue;
      }
      buffer += ticks;
      i += ticks.length;
      continue;
    }
    if (ch === '[') {
      const match = /^\[([^\]]*)\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/.exec(rest);
      if (match) {
        const href = safeHref(match[2]);
        flush();
        if (href) fragment.appendChild(link(inline(match[1]), href));
        else fragment.appendChild(document.createTextNode(match[0]));
        i += match[0].length;
        continue;
      }
    }
    if ((ch === 'h' || ch === 'H') && /^https?:\/\//i.test(rest) && !/[\w/]$/.test(buffer)) {
      const match = AUTOLINK.exec(rest);
      const href = match && safeHref(match[0]);
      if (href) {
        flush();
        fragment.appendChild(link(match[0], href));
        i += match[0].length;
        continue;
      }
    }
    // `__` opens only where `_` would: not inside a word, not before a space.
    if ((ch === '*' || ch === '_') && text[i + 1] === ch && text[i + 2] && !/\s/.test(text[i + 2])
        && !(ch === '_' && /\w$/.test(buffer))) {
      const marker = ch + ch;
      const end = findClosing(text, marker, i + 2);
      if (end > i + 2) {
        flush();
        fragment.appendChild(h('strong', null, inline(text.slice(i + 2, end))));
        i = end + 2;
        continue;
      }
    }
    if ((ch === '*' || ch === '_') && text[i + 1] && !/\s/.test(text[i + 1]) && !(ch === '_' && /\w$/.test(buffer))) {
      const end = findClosing(text, ch, i + 1);
      if (end > i + 1) {
        flush();
        fragment.appendChild(h('em', null, inline(text.slice(i + 1, end))));
        i = end + 1;
        continue;
      }
    }
    if (ch === '~' && text[i + 1] === '~') {
      const end = text.indexOf('~~', i + 2);
      if (end > i + 2) {
        flush();
        fragment.appendChild(h('del', null, inline(text.slice(i + 2, end))));
        i = end + 2;
        continue;
      }
    }
    buffer += ch;
    i++;
  }
  flush();
  return fragment;
}

const MAX_EMPHASIS = 2000;

/** The index of the closing `marker` at or after `from` (not after whitespace, not inside code). */
function findClosing(text, marker, from) {
  let i = from;
  // Emphasis spans no further than this: an unclosed marker in a long answer costs a
  // bounded search, not one to the end of the text for each marker.
  const end = Math.min(text.length, from + MAX_EMPHASIS);
  while (i < end) {
    if (text[i] === '\\') {
      i += 2;
      continue;
    }
    if (text[i] === '`') {
      const ticks = /^`+/.exec(text.slice(i))[0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > 0) {
        i = end + ticks.length;
        continue;
      }
    }
    if (text.startsWith(marker, i) && !/\s/.test(text[i - 1])) {
      // A single marker must not be half of a double one.
      if (marker.length === 1 && text[i + 1] === marker) {
        const after = findClosing(text, marker + marker, i + 2);
        if (after > 0) {
          i = after + 2;
          continue;
        }
      }
      // `_` and `__` close only at a word's end: `snake_case` and `a.__b` stay as they are.
      if (marker[0] === '_' && /\w/.test(text[i + marker.length] || '')) {
        i++;
        continue;
      }
      return i;
    }
    i++;
  }
  return -1;
}
