// The platform's view of usage and cost (analysts and system admins): per tenant over
// UTC days with GPU pools' costs by occupancy, the pools' idle capacity, and each costed
// pool's split by tenant. Every sum is exact (BigInt).

import { api, getAllPages, allTenants, query, reportWindow, pointAtCsv, ALLOCATION_REPORT as REPORT } from './api.js';
import { h, replace, big, fmtInt, fmtMoney, fmtPercent, rowTokens } from './dom.js';
import { pageHeader, card, table, td, num, loading, errorBox, emptyState, dateRange } from './ui.js';


/** A share of a pool's capacity: "12.34%", "<0.01%" for a sliver. */
function shareText(share) {
  return share > 0 && share < 0.0001 ? '<0.01%' : fmtPercent(share, 2);
}

/** A row's whole cost: its token cost plus its share of GPU pools. */
function fullCost(row) {
  return big(row.cost_micros) + big(row.gpu_cost_micros);
}

export function render(main, ctx) {
  const { session } = ctx;
  const platformAdmin = session.role === 'system_admin';
  let loadToken = 0;

  main.append(pageHeader('System', 'Usage, cost, billing and margin of every tenant, by UTC day; GPU pools by occupancy.'));

  const csv = h('a', { id: 'system-csv', class: 'btn btn-secondary', href: '#' }, 'Download CSV');
  const range = dateRange({ prefix: 'system', onApply: load, onChange: updateCsv });
  const status = h('p', { class: 'muted range-status', 'aria-live': 'polite' });
  main.append(card(null, { class: 'toolbar-card' }, h('div', { class: 'toolbar' }, range.element, h('div', { class: 'toolbar-end' }, csv)), status));

  const tenantsArea = h('div', null, loading());
  const idleArea = h('div', null, loading());
  const gpuArea = h('div', null, loading());
  main.append(card('Tenants', null, tenantsArea));
  main.append(h('div', { class: 'grid-2 grid-wide-last' },
    card('Idle GPU capacity', null, h('p', { class: 'muted' }, 'Slots of costed engine pools that no request held: the platform’s cost.'), idleArea),
    card('GPU pools by tenant', null, gpuArea)));

  updateCsv(range.value());
  load(range.value());

  function updateCsv(r) {
    if (r.error) return;
    const w = reportWindow(r);
    pointAtCsv(csv, { from: w.from, to: w.to, group_by: 'tenant', include_gpu: 'true' }, `system-${r.from}-${r.to}.csv`);
  }

  async function load(r) {
    if (r.error) return;
    const token = ++loadToken;
    updateCsv(r);
    const w = reportWindow(r);
    status.textContent = `Loading ${range.describe(r)}…`;
    for (const area of [tenantsArea, idleArea, gpuArea]) replace(area, loading());
    try {
      const [report, tenants, pools] = await Promise.all([
        getAllPages(REPORT, { group_by: 'tenant', include_gpu: 'true', from: w.from, to: w.to, limit: 10000 }),
        allTenants().catch(() => new Map()),
        platformAdmin ? api.get('/admin/v1/pools').then((a) => a.data || []).catch(() => null) : Promise.resolve(null),
      ]);
      if (token !== loadToken) return;
      status.textContent = `Showing ${range.describe(r)}.`;
      const groups = (report.data || []).filter((row) => row.row === 'group');
      const idle = (report.data || []).filter((row) => row.row === 'idle');
      drawTenants(groups, report.totals || [], tenants);
      drawIdle(idle);
      await drawGpu(idle, pools, tenants, w, token);
    } catch (error) {
      if (token !== loadToken) return;
      status.textContent = '';
      replace(tenantsArea, errorBox(error));
      replace(idleArea);
      replace(gpuArea);
    }
  }

  function tenantName(tenants, id) {
    return tenants.get(id)?.name || id || '(none)';
  }

  function drawTenants(rows, totals, tenants) {
    const sorted = rows.slice().sort((a, b) => {
      const ca = fullCost(a);
      const cb = fullCost(b);
      return cb > ca ? 1 : cb < ca ? -1 : tenantName(tenants, a.tenant).localeCompare(tenantName(tenants, b.tenant));
    });
    const moneyCell = (micros, currency, title) => num(micros === null || micros === undefined ? h('span', { class: 'muted' }, '—') : fmtMoney(micros, currency), null, title ? { title } : {});
    const line = (row, label, cls) => h('tr', { class: cls, dataset: row.tenant ? { tenantId: row.tenant } : {} },
      td(label, 'cell-strong'),
      num(fmtInt(row.requests)),
      num(fmtInt(rowTokens(row)), null, { title: `${fmtInt(row.prompt_tokens)} prompt + ${fmtInt(row.completion_tokens)} completion` }),
      moneyCell(fullCost(row), row.currency, `Tokens ${fmtMoney(row.cost_micros, row.currency)} + GPU ${fmtMoney(row.gpu_cost_micros || 0, row.currency)}`),
      moneyCell(row.gpu_cost_micros || 0, row.currency),
      moneyCell(row.billed_micros, row.currency),
      num(h('span', { class: big(row.margin_micros) < 0n ? 'negative' : 'positive' }, fmtMoney(row.margin_micros, row.currency))));
    replace(tenantsArea, table({
      id: 'system-tenants',
      caption: 'Usage and cost by tenant',
      columns: [
        { label: 'Tenant' }, { label: 'Requests', numeric: true }, { label: 'Tokens', numeric: true }, { label: 'Cost', numeric: true },
        { label: 'of which GPU', numeric: true }, { label: 'Billed', numeric: true }, { label: 'Margin', numeric: true },
      ],
      rows: sorted.map((row) => line(row, tenantName(tenants, row.tenant))),
      footer: totals.map((row) => line(row, totals.length > 1 ? `Total (${row.currency})` : 'Total, idle GPU included', 'total-row')),
      empty: 'No usage in this range.',
    }));
  }

  function drawIdle(idle) {
    replace(idleArea, table({
      id: 'system-gpu-idle',
      caption: 'Idle GPU capacity by pool',
      columns: [{ label: 'Pool' }, { label: 'Idle slot-seconds', numeric: true }, { label: 'Cost', numeric: true }],
      rows: idle.map((row) => h('tr', { dataset: { pool: row.pool } },
        td(h('code', null, row.pool), 'cell-strong'),
        num(fmtInt(Math.round(Number(row.slot_seconds) || 0))),
        num(fmtMoney(row.gpu_cost_micros, row.currency)))),
      empty: 'No engine pool has a cost_per_hour.',
    }));
  }

  async function drawGpu(idle, pools, tenants, w, token) {
    // The idle rows name every pool with a cost_per_hour (the pools' list does not say).
    const costed = [...new Set(idle.map((row) => row.pool))].sort();
    const uncosted = pools ? pools.map((p) => p.id).filter((id) => !costed.includes(id)) : [];
    const results = await Promise.all(costed.map((pool) =>
      api.get('/admin/v1/reports/gpu' + query({ pool, from: w.from, to: w.to })).then((report) => ({ pool, report }), (error) => ({ pool, error }))));
    if (token !== loadToken) return;
    const rows = [];
    const problems = [];
    for (const { pool, report, error } of results) {
      if (error) {
        problems.push(errorBox(error));
        continue;
      }
      for (const row of report.data || []) {
        rows.push(h('tr', { class: row.row === 'idle' ? 'idle-row' : null, dataset: { pool, tenantId: row.tenant || '' } },
          td(h('code', null, pool)),
          td(row.row === 'idle' ? h('em', null, 'Idle') : tenantName(tenants, row.tenant), 'cell-strong'),
          num(fmtInt(Math.round(Number(row.slot_seconds) || 0))),
          num(shareText(row.share)),
          num(fmtMoney(row.cost_micros, report.currency))));
      }
      rows.push(h('tr', { class: 'subtotal-row', dataset: { pool } },
        td(h('code', null, pool)),
        td(`${report.replicas} × ${report.slots} slots at ${fmtMoney(report.cost_per_hour_micros, report.currency)}/h`, 'muted'),
        num(fmtInt(Math.round(Number(report.totals?.slot_seconds) || 0))),
        num(shareText(report.totals?.share ?? 1)),
        num(fmtMoney(report.cost_micros, report.currency))));
    }
    replace(gpuArea,
      table({
        id: 'system-gpu',
        caption: 'Engine pools by tenant',
        columns: [{ label: 'Pool' }, { label: 'Tenant' }, { label: 'Slot-seconds', numeric: true }, { label: 'Share', numeric: true }, { label: 'Cost', numeric: true }],
        rows,
        empty: 'No engine pool has a cost_per_hour, so there is no GPU cost to split.',
      }),
      problems,
      uncosted.length ? emptyState(`Without a cost_per_hour (not allocated): ${uncosted.join(', ')}.`, { class: 'hint' }) : null);
  }
}

