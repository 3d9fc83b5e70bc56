// Usage of the org (an org user: of their own keys) over UTC days: totals, tokens and
// cost per day by model, breakdowns by model and by user (org admin) or key (org user),
// and the same report as CSV. Money is summed as BigInt, never in floating point.

import { getAllPages, tenantUsers, tenantKeys, reportWindow, pointAtCsv, ALLOCATION_REPORT as REPORT } from './api.js';
import {
  h, replace, big, fmtInt, fmtMoney, fmtCompact, fmtDayShort, daysBetween, rowTokens, microsToNumber, fmtMoneyTick,
} from './dom.js';
import { pageHeader, card, table, td, num, loading, errorBox, emptyState, dateRange, button } from './ui.js';
import { barChart } from './chart.js';


export function render(main, ctx) {
  const { session } = ctx;
  const tenant = session.tenantId;
  const byUser = session.isOrgAdmin;
  let chartMode = 'tokens';
  let last = null;
  let loadToken = 0;

  main.append(pageHeader('Usage',
    byUser ? 'Requests, tokens and cost of your organisation, by UTC day.' : 'Requests, tokens and cost of your own keys, by UTC day.'));

  const csv = h('a', { id: 'usage-csv', class: 'btn btn-secondary', href: '#' }, 'Download CSV');
  const range = dateRange({ prefix: 'usage', onApply: load, onChange: updateCsv });
  const status = h('p', { class: 'muted range-status', 'aria-live': 'polite' });
  main.append(card(null, { class: 'toolbar-card' }, h('div', { class: 'toolbar' }, range.element, h('div', { class: 'toolbar-end' }, csv)), status));

  const totalRequests = h('span', { id: 'usage-total-requests', class: 'stat-value', 'data-value': '0' }, '—');
  const totalTokens = h('span', { id: 'usage-total-tokens', class: 'stat-value', 'data-value': '0' }, '—');
  const totalCost = h('span', { id: 'usage-total-cost', class: 'stat-value', 'data-value': '0' }, '—');
  const tokenDetail = h('span', { class: 'stat-detail' });
  const costDetail = h('span', { class: 'stat-detail' });
  main.append(h('div', { class: 'stats' },
    stat('Requests', totalRequests),
    stat('Tokens (prompt + completion)', totalTokens, tokenDetail),
    stat('Cost', totalCost, costDetail)));

  const tokensToggle = button('Tokens', { 'aria-pressed': 'true', id: 'usage-chart-tokens', onclick: () => setMode('tokens') });
  const costToggle = button('Cost', { 'aria-pressed': 'false', id: 'usage-chart-cost', onclick: () => setMode('cost') });
  const chartArea = h('div', { class: 'chart-area' }, loading());
  const chartTitle = h('h2', { class: 'card-title' }, 'Tokens per day, by model');
  main.append(h('section', { class: 'card' },
    h('div', { class: 'card-head' }, chartTitle, h('div', { class: 'segmented', role: 'group', 'aria-label': 'Chart' }, tokensToggle, costToggle)),
    chartArea));

  const modelArea = h('div', null, loading());
  const whoArea = h('div', null, loading());
  main.append(h('div', { class: 'grid-2' },
    card('By model', null, modelArea),
    card(byUser ? 'By user' : 'By key', null, whoArea)));

  updateCsv(range.value());
  load(range.value());

  function stat(label, value, detail) {
    return h('div', { class: 'stat card' }, h('span', { class: 'stat-label' }, label), value, detail || null);
  }

  function updateCsv(r) {
    if (r.error) return;
    const w = reportWindow(r);
    pointAtCsv(csv, { tenant, from: w.from, to: w.to, group_by: 'day,model' }, `usage-${r.from}-${r.to}.csv`);
  }

  async function load(r) {
    if (r.error) return;
    const token = ++loadToken;
    updateCsv(r);
    const w = reportWindow(r);
    status.textContent = `Loading ${range.describe(r)}…`;
    try {
      const [daily, who, names] = await Promise.all([
        getAllPages(REPORT, { tenant, from: w.from, to: w.to, group_by: 'day,model', limit: 10000 }),
        getAllPages(REPORT, { tenant, from: w.from, to: w.to, group_by: byUser ? 'user' : 'key', limit: 10000 }),
        (byUser ? tenantUsers(tenant) : tenantKeys(tenant).then((keys) => new Map(keys.map((k) => [k.id, k])))).catch(() => new Map()),
      ]);
      if (token !== loadToken) return;
      last = { range: r, daily, who, names };
      status.textContent = `Showing ${range.describe(r)}.`;
      draw();
    } catch (error) {
      if (token !== loadToken) return;
      status.textContent = '';
      replace(chartArea, errorBox(error));
      replace(modelArea);
      replace(whoArea);
    }
  }

  function setMode(mode) {
    chartMode = mode;
    tokensToggle.setAttribute('aria-pressed', String(mode === 'tokens'));
    costToggle.setAttribute('aria-pressed', String(mode === 'cost'));
    if (last) drawChart();
  }

  function draw() {
    drawTotals();
    drawChart();
    drawByModel();
    drawByWho();
  }

  function drawTotals() {
    const totals = last.daily.totals || [];
    let requests = 0n;
    let tokens = 0n;
    let prompt = 0n;
    let completion = 0n;
    for (const row of totals) {
      requests += big(row.requests);
      prompt += big(row.prompt_tokens);
      completion += big(row.completion_tokens);
    }
    tokens = prompt + completion;
    totalRequests.dataset.value = requests.toString();
    totalRequests.textContent = fmtInt(requests);
    totalTokens.dataset.value = tokens.toString();
    totalTokens.textContent = fmtInt(tokens);
    tokenDetail.textContent = `${fmtInt(prompt)} prompt · ${fmtInt(completion)} completion`;
    if (totals.length) {
      totalCost.dataset.value = big(totals[0].cost_micros).toString();
      totalCost.dataset.currency = totals[0].currency;
      totalCost.textContent = totals.map((row) => fmtMoney(row.cost_micros, row.currency)).join(' + ');
      costDetail.textContent = totals.length > 1 ? 'in several currencies: amounts in different currencies are not added' : totals[0].currency;
    } else {
      totalCost.dataset.value = '0';
      totalCost.textContent = fmtMoney(0n);
      costDetail.textContent = '';
    }
  }

  function groups(report) {
    return (report.data || []).filter((row) => row.row === 'group');
  }

  function drawChart() {
    const rows = groups(last.daily);
    const days = daysBetween(last.range.from, last.range.to);
    const index = new Map(days.map((day, i) => [day, i]));
    const currency = (last.daily.totals && last.daily.totals[0] && last.daily.totals[0].currency) || rows[0]?.currency || '';
    const perModel = new Map();
    for (const row of rows) {
      const i = index.get(row.day);
      if (i === undefined) continue;
      if (!perModel.has(row.model)) perModel.set(row.model, { tokens: days.map(() => 0n), micros: days.map(() => 0n), total: 0n });
      const entry = perModel.get(row.model);
      entry.tokens[i] += rowTokens(row);
      entry.total += rowTokens(row);
      if (row.currency === currency) entry.micros[i] += big(row.cost_micros);
    }
    const models = [...perModel.entries()].sort((a, b) => (b[1].total > a[1].total ? 1 : b[1].total < a[1].total ? -1 : a[0].localeCompare(b[0])));
    const cost = chartMode === 'cost';
    chartTitle.textContent = cost ? `Cost per day, by model${currency ? ` (${currency})` : ''}` : 'Tokens per day, by model';
    const series = models.map(([model, entry]) => ({
      name: model || '(none)',
      values: cost ? entry.micros.map(microsToNumber) : entry.tokens.map(Number),
      texts: cost ? entry.micros.map((m) => fmtMoney(m, currency)) : entry.tokens.map((t) => `${fmtInt(t)} tokens`),
    }));
    const svg = barChart({
      id: 'usage-chart',
      title: cost ? 'Cost per UTC day, stacked by model' : 'Tokens per UTC day, stacked by model',
      categories: days,
      categoryLabel: fmtDayShort,
      series,
      mode: 'stacked',
      formatTick: cost ? (v) => fmtMoneyTick(v, currency) : fmtCompact,
      emptyText: 'No usage in this range',
    });
    const note = rows.length ? null : emptyState(`No usage between ${range.describe(last.range)}. Requests made with your keys show up here within about a minute.`, { id: 'usage-empty' });
    replace(chartArea, note, svg);
  }

  function sumsBy(rows, keyOf) {
    const sums = new Map();
    for (const row of rows) {
      const key = `${keyOf(row)}\u0000${row.currency}`;
      if (!sums.has(key)) sums.set(key, { id: keyOf(row), currency: row.currency, requests: 0n, prompt: 0n, completion: 0n, micros: 0n });
      const entry = sums.get(key);
      entry.requests += big(row.requests);
      entry.prompt += big(row.prompt_tokens);
      entry.completion += big(row.completion_tokens);
      entry.micros += big(row.cost_micros);
    }
    return [...sums.values()].sort((a, b) => {
      const ta = a.prompt + a.completion;
      const tb = b.prompt + b.completion;
      return tb > ta ? 1 : tb < ta ? -1 : String(a.id).localeCompare(String(b.id));
    });
  }

  function totalsFooter(totals, width) {
    return (totals || []).map((row) => h('tr', { class: 'total-row' },
      td('Total', null, { colspan: width }),
      num(fmtInt(row.requests)),
      num(fmtInt(rowTokens(row))),
      num(fmtMoney(row.cost_micros, row.currency))));
  }

  function drawByModel() {
    const entries = sumsBy(groups(last.daily), (row) => row.model);
    replace(modelArea, table({
      id: 'usage-by-model',
      caption: 'Usage by model',
      columns: [{ label: 'Model' }, { label: 'Requests', numeric: true }, { label: 'Tokens', numeric: true }, { label: 'Cost', numeric: true }],
      rows: entries.map((e) => h('tr', { dataset: { model: e.id } },
        td(e.id || '(none)', 'cell-strong'),
        num(fmtInt(e.requests)),
        num(fmtInt(e.prompt + e.completion), null, { title: `${fmtInt(e.prompt)} prompt + ${fmtInt(e.completion)} completion` }),
        num(fmtMoney(e.micros, e.currency)))),
      footer: entries.length ? totalsFooter(last.daily.totals, 1) : [],
      empty: 'No usage in this range.',
    }));
  }

  function whoLabel(id) {
    if (!id) return byUser ? 'No owner (keys made before users)' : 'No key';
    const found = last.names.get(id);
    if (!found) return id;
    return byUser ? (found.name || found.email) : found.name;
  }

  function drawByWho() {
    const field = byUser ? 'user' : 'key';
    const entries = sumsBy(groups(last.who), (row) => row[field]);
    replace(whoArea, table({
      id: 'usage-by-who',
      caption: byUser ? 'Usage by user' : 'Usage by key',
      columns: [{ label: byUser ? 'User' : 'Key' }, { label: 'Requests', numeric: true }, { label: 'Tokens', numeric: true }, { label: 'Cost', numeric: true }],
      rows: entries.map((e) => {
        const found = e.id ? last.names.get(e.id) : null;
        return h('tr', { dataset: { id: e.id } },
          td(h('span', { title: byUser && found ? found.email : e.id }, whoLabel(e.id)), 'cell-strong'),
          num(fmtInt(e.requests)),
          num(fmtInt(e.prompt + e.completion)),
          num(fmtMoney(e.micros, e.currency)));
      }),
      footer: entries.length ? totalsFooter(last.who.totals, 1) : [],
      empty: 'No usage in this range.',
    }));
  }
}
