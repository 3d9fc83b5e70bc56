// The org's budget (tokens and/or money per day, week or month) with what the period has
// used and holds reserved, the tier's monthly token quota, and — for org admins — the
// budget's form and the webhooks its alerts go to.

import { api, seg, query, isNotFound } from './api.js';
import {
  h, replace, big, fmtInt, fmtMoney, fmtPercent, fmtDateTimeUTC, microsToDecimal, parseDecimalToMicros, humanize,
} from './dom.js';
import {
  pageHeader, card, field, table, td, loading, errorBox, emptyState, notify, errorText, oneTimeValue, button, badge,
} from './ui.js';

const LARGEST_LIMIT = 1n << 50n;
const PERIODS = { day: 'Daily', week: 'Weekly', month: 'Monthly' };
const EVENTS = ['budget.threshold_reached', 'budget.exceeded', 'quota.exhausted', 'budget.reset'];

/** Percent of `part` in `whole` (BigInts), to 0.001 %. */
function percent(part, whole) {
  if (whole <= 0n) return 0;
  return Number((part * 100000n) / whole) / 1000;
}

/**
 * A horizontal bar of used / reserved / remaining (BigInts) against `limit`, widths set
 * with element.style.width; threshold marks at their fractions.
 */
export function usageBar({ id, used, reserved, limit, format, thresholds = [], label }) {
  const usedPct = Math.min(100, percent(used, limit));
  const reservedPct = Math.min(100 - usedPct, percent(reserved, limit));
  const remainingPct = Math.max(0, 100 - usedPct - reservedPct);
  const remaining = limit - used - reserved > 0n ? limit - used - reserved : 0n;
  const segment = (cls, pct, text) => {
    const el = h('div', { class: ['segment', cls], title: text });
    el.style.width = `${pct}%`;
    return el;
  };
  const bar = h('div', { id, class: 'budget-bar', role: 'img', 'aria-label': `${label}: ${format(used)} used, ${format(reserved)} reserved, ${format(remaining)} remaining of ${format(limit)}` },
    segment('used', usedPct, `Used: ${format(used)}`),
    segment('reserved', reservedPct, `Reserved by requests in flight: ${format(reserved)}`),
    segment('remaining', remainingPct, `Remaining: ${format(remaining)}`));
  for (const threshold of thresholds) {
    const mark = h('span', { class: 'threshold-mark', title: `Alert at ${fmtPercent(threshold, 0)}` });
    mark.style.left = `${threshold * 100}%`;
    bar.appendChild(mark);
  }
  const over = used + reserved > limit;
  return h('div', { class: 'bar-block' },
    h('div', { class: 'bar-head' },
      h('span', { class: 'bar-label' }, label),
      h('span', { class: 'bar-figure' }, `${format(used + reserved)} of ${format(limit)}`, limit > 0n ? ` (${fmtPercent(Number(percent(used + reserved, limit)) / 100)})` : '')),
    bar,
    h('ul', { class: 'bar-legend' },
      h('li', null, h('span', { class: 'swatch used' }), `Used ${format(used)}`),
      h('li', null, h('span', { class: 'swatch reserved' }), `Reserved ${format(reserved)}`),
      h('li', null, h('span', { class: 'swatch remaining' }), `Remaining ${format(remaining)}`),
      over ? h('li', { class: 'over' }, 'Limit reached') : null));
}

export function render(main, ctx) {
  const { session } = ctx;
  const tenant = session.tenantId;
  const admin = session.isOrgAdmin;
  const base = `/admin/v1/tenants/${seg(tenant)}`;
  let currency = '';
  let budget = null;

  main.append(pageHeader('Budget',
    admin ? 'Limit what your organisation spends per day, week or month, and get alerts as it fills.' : 'What your organisation may spend, and how much of it is used.'));

  const budgetArea = h('div', null, loading('Loading the budget…'));
  const quotaArea = h('div', null, loading('Loading the quota…'));
  main.append(h('div', { class: 'grid-2 grid-wide-first' },
    card('Budget', { id: 'budget-card' }, budgetArea),
    card('Tier quota', { id: 'quota-card' }, quotaArea)));

  const form = admin ? budgetForm() : null;
  if (form) main.append(card('Set the budget', { id: 'budget-form-card' }, form.element));
  else main.append(h('p', { class: 'muted note' }, 'Only an org admin can change the budget.'));

  const hooks = admin ? webhooks() : null;
  if (hooks) main.append(hooks.element);

  load();

  async function load() {
    // The price list's currency, from the org's usage (budgets themselves do not name it).
    const currencyLookup = api.get('/admin/v1/reports/allocation' + query({ tenant, group_by: 'tenant', limit: 1 }))
      .then((report) => (report.totals && report.totals[0] && report.totals[0].currency) || '')
      .catch(() => '');
    const [budgetResult, quotaResult, found] = await Promise.allSettled([
      api.get(`${base}/budget`), api.get(`${base}/quota`), currencyLookup,
    ]);
    currency = found.value || '';
    if (budgetResult.status === 'fulfilled') {
      budget = budgetResult.value;
      drawBudget();
    } else if (isNotFound(budgetResult.reason)) {
      budget = null;
      drawBudget();
    } else {
      replace(budgetArea, errorBox(budgetResult.reason));
    }
    if (quotaResult.status === 'fulfilled') drawQuota(quotaResult.value);
    else if (isNotFound(quotaResult.reason)) replace(quotaArea, emptyState('Your tier bundles no monthly token quota.', { id: 'quota-none' }));
    else replace(quotaArea, errorBox(quotaResult.reason));
    form?.fill(budget);
  }

  const money = (micros) => fmtMoney(micros, currency);
  const tokens = (count) => `${fmtInt(count)} tokens`;

  function drawBudget() {
    if (!budget) {
      replace(budgetArea, emptyState(admin ? 'No budget is set — set one below.' : 'No budget is set for your organisation.', { id: 'budget-none' }));
      return;
    }
    const thresholds = budget.soft_thresholds || [];
    const bars = [];
    if (budget.limit_tokens !== null && budget.limit_tokens !== undefined) {
      bars.push({ label: 'Tokens', used: big(budget.used_tokens), reserved: big(budget.reserved_tokens), limit: big(budget.limit_tokens), format: tokens });
    }
    if (budget.limit_micros !== null && budget.limit_micros !== undefined) {
      bars.push({ label: 'Cost', used: big(budget.used_micros), reserved: big(budget.reserved_micros), limit: big(budget.limit_micros), format: money });
    }
    replace(budgetArea,
      h('dl', { class: 'facts' },
        fact('Period', h('span', { id: 'budget-period-text' }, PERIODS[budget.period] || budget.period)),
        fact('Period started', fmtDateTimeUTC(budget.period_start)),
        fact('Resets', h('span', { id: 'budget-resets' }, fmtDateTimeUTC(budget.resets_at))),
        fact('When spent', budget.action === 'throttle' ? 'Requests are throttled' : 'Requests are refused'),
        fact('Alerts at', thresholds.length ? thresholds.map((t) => fmtPercent(t, 1)).join(', ') : 'none')),
      bars.map((bar, index) => usageBar({ ...bar, id: index === 0 ? 'budget-bar' : `budget-bar-${bar.label.toLowerCase()}`, thresholds })));
  }

  function drawQuota(quota) {
    const limit = big(quota.monthly_quota_tokens);
    replace(quotaArea,
      h('dl', { class: 'facts' },
        fact('Tier', quota.tier),
        fact('Monthly quota', tokens(limit)),
        fact('Resets', fmtDateTimeUTC(quota.resets_at)),
        fact('When exhausted', humanize(quota.on_quota_exhausted)),
        fact('Beyond the quota', quota.overage_per_million === null || quota.overage_per_million === undefined
          ? 'not billed' : `${money(quota.overage_per_million)} per million tokens`)),
      usageBar({ id: 'quota-bar', label: 'This month', used: big(quota.used_tokens), reserved: big(quota.reserved_tokens), limit, format: tokens }));
  }

  function fact(label, value) {
    return h('div', { class: 'fact' }, h('dt', null, label), h('dd', null, value));
  }

  // ---------------------------------------------------------------- the form

  function budgetForm() {
    const period = h('select', { id: 'budget-period' },
      Object.entries(PERIODS).map(([value, label]) => h('option', { value }, label)));
    period.value = 'month';
    const limitTokens = h('input', { type: 'text', id: 'budget-limit-tokens', inputmode: 'numeric', placeholder: 'no token limit', autocomplete: 'off' });
    const limitCost = h('input', { type: 'text', id: 'budget-limit-cost', inputmode: 'decimal', placeholder: 'no cost limit', autocomplete: 'off' });
    const thresholds = h('input', { type: 'text', id: 'budget-thresholds', value: '0.8', placeholder: '0.8, 0.9', autocomplete: 'off' });
    const action = h('select', { id: 'budget-action' },
      h('option', { value: 'block' }, 'Block — refuse requests'),
      h('option', { value: 'throttle' }, 'Throttle — slow requests down'));
    const save = h('button', { type: 'submit', id: 'budget-save', class: 'btn btn-primary' }, 'Save budget');
    const clear = button('Remove budget', { id: 'budget-clear', onclick: clearBudget }, 'danger');
    const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const costLabel = h('span');

    const element = h('form', { class: 'form-grid', novalidate: true, onsubmit: saveBudget },
      field('Period (UTC)', period),
      field('Token limit', limitTokens, 'Prompt + completion tokens per period. Leave empty for none.'),
      field(costLabel, limitCost, 'In currency units, e.g. 250 or 12.50 (up to 6 decimals). Leave empty for none.'),
      field('Alert thresholds', thresholds, 'Fractions of a limit, comma-separated, e.g. 0.8, 0.9.'),
      field('When a limit is reached', action),
      h('div', { class: 'form-actions' }, save, clear),
      problem);
    costLabel.textContent = 'Cost limit';

    function fill(current) {
      costLabel.textContent = currency ? `Cost limit (${currency})` : 'Cost limit';
      clear.disabled = !current;
      if (!current) return;
      period.value = current.period;
      limitTokens.value = current.limit_tokens === null || current.limit_tokens === undefined ? '' : String(current.limit_tokens);
      limitCost.value = current.limit_micros === null || current.limit_micros === undefined ? '' : microsToDecimal(current.limit_micros, { trim: true }).replace(/\.$/, '');
      thresholds.value = (current.soft_thresholds || []).join(', ');
      action.value = current.action || 'block';
    }

    function parse() {
      const body = { period: period.value, action: action.value };
      const tokensText = limitTokens.value.trim().replaceAll(/[\s,_]/g, '');
      if (tokensText) {
        if (!/^\d+$/.test(tokensText)) throw new Error('The token limit must be a whole number.');
        if (BigInt(tokensText) > LARGEST_LIMIT) throw new Error(`The token limit may be at most ${fmtInt(LARGEST_LIMIT)}.`);
        body.limit_tokens = Number(tokensText);
      }
      const costText = limitCost.value.trim();
      if (costText) {
        const micros = parseDecimalToMicros(costText, 'cost limit');
        if (micros > LARGEST_LIMIT) throw new Error(`The cost limit may be at most ${microsToDecimal(LARGEST_LIMIT, { trim: true })}.`);
        body.limit_micros = Number(micros); // at most 2^50: exact as a JSON number
      }
      if (body.limit_tokens === undefined && body.limit_micros === undefined) throw new Error('Give a token limit, a cost limit or both.');
      const parts = thresholds.value.split(',').map((p) => p.trim()).filter(Boolean);
      if (parts.length) {
        body.soft_thresholds = parts.map((part) => {
          const value = /^(0?\.\d+|\d+(\.\d+)?)$/.test(part) ? Number(part) : NaN;
          if (!(value > 0 && value < 1)) throw new Error(`Alert thresholds are fractions between 0 and 1, such as 0.8; “${part}” is not.`);
          return value;
        });
        if (body.soft_thresholds.length > 10) throw new Error('Give at most 10 alert thresholds.');
      }
      return body;
    }

    async function saveBudget(event) {
      event.preventDefault();
      problem.hidden = true;
      let body;
      try {
        body = parse();
      } catch (error) {
        problem.textContent = error.message;
        problem.hidden = false;
        return;
      }
      save.disabled = true;
      save.textContent = 'Saving…';
      try {
        budget = await api.put(`${base}/budget`, body);
        drawBudget();
        fill(budget);
        notify('Budget saved.', 'success');
      } catch (error) {
        problem.textContent = errorText(error);
        problem.hidden = false;
      } finally {
        save.disabled = false;
        save.textContent = 'Save budget';
      }
    }

    async function clearBudget() {
      problem.hidden = true;
      clear.disabled = true;
      try {
        await api.put(`${base}/budget`, null);
        budget = null;
        drawBudget();
        fill(null);
        notify('Budget removed.', 'success');
      } catch (error) {
        problem.textContent = errorText(error);
        problem.hidden = false;
        clear.disabled = false;
      }
    }

    return { element, fill };
  }

  // ---------------------------------------------------------------- webhooks

  function webhooks() {
    const listArea = h('div', null, loading('Loading webhooks…'));
    const url = h('input', { type: 'url', id: 'webhook-url', placeholder: 'https://hooks.example.com/switchyard', required: true, autocomplete: 'off' });
    const add = h('button', { type: 'submit', id: 'webhook-add', class: 'btn btn-primary' }, 'Add webhook');
    const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const secretArea = h('div');
    const boxes = EVENTS.map((event) => h('input', { type: 'checkbox', id: `webhook-event-${event.replace('.', '-')}`, value: event, checked: true }));
    const element = card('Alert webhooks', { id: 'webhooks-card' },
      h('p', { class: 'muted' }, 'Switchyard POSTs budget and quota alerts to these URLs, signed with each webhook’s secret.'),
      listArea,
      h('form', { class: 'form-row', novalidate: true, onsubmit: addWebhook },
        field('URL', url, 'Must be a public http or https address.', { class: 'grow' }),
        h('div', { class: 'field field-action' }, add)),
      h('fieldset', { class: 'checks' }, h('legend', null, 'Events'),
        boxes.map((box) => h('label', { class: 'check', for: box.id }, box, box.value))),
      problem,
      secretArea);
    loadHooks();

    async function loadHooks() {
      try {
        const answer = await api.get(`${base}/webhooks`);
        draw(answer.data || []);
      } catch (error) {
        replace(listArea, errorBox(error));
      }
    }

    function draw(list) {
      replace(listArea, table({
        id: 'webhooks-table',
        caption: 'Webhooks',
        columns: [{ label: 'URL' }, { label: 'Events' }, { label: 'Created' }, { label: '', class: 'actions' }],
        rows: list.map((hook) => h('tr', { dataset: { webhookId: hook.id } },
          td(h('code', { class: 'wrap' }, hook.url), 'webhook-url'),
          td((hook.events || []).length === EVENTS.length ? 'All events' : (hook.events || []).map((e) => badge(e, 'neutral')), 'webhook-events'),
          td(fmtDateTimeUTC(hook.created_at)),
          td(button('Delete', { class: 'webhook-delete btn-small', 'aria-label': `Delete webhook ${hook.url}`, onclick: () => remove(hook) }, 'danger'), 'actions'))),
        empty: 'No webhooks yet — add one below.',
      }));
    }

    async function addWebhook(event) {
      event.preventDefault();
      problem.hidden = true;
      const body = { url: url.value.trim() };
      if (!body.url) {
        problem.textContent = 'Enter the URL alerts should be sent to.';
        problem.hidden = false;
        return;
      }
      const events = boxes.filter((box) => box.checked).map((box) => box.value);
      if (!events.length) {
        problem.textContent = 'Choose at least one event.';
        problem.hidden = false;
        return;
      }
      if (events.length !== EVENTS.length) body.events = events;
      add.disabled = true;
      try {
        const created = await api.post(`${base}/webhooks`, body);
        url.value = '';
        replace(secretArea, h('div', { id: 'webhook-created', class: 'panel panel-success', role: 'status' },
          h('h3', null, 'Webhook added'),
          oneTimeValue({
            id: 'webhook-secret', value: created.secret, copyId: 'webhook-secret-copy',
            label: 'Its signing secret:',
            note: 'Copy it now: the secret is shown only this once. Use it to check the signature of each alert.',
          })));
        await loadHooks();
      } catch (error) {
        problem.textContent = errorText(error);
        problem.hidden = false;
      } finally {
        add.disabled = false;
      }
    }

    async function remove(hook) {
      try {
        await api.del(`${base}/webhooks/${seg(hook.id)}`);
        notify('Webhook deleted.', 'success');
        await loadHooks();
      } catch (error) {
        notify(errorText(error), 'error');
      }
    }

    return { element };
  }
}
