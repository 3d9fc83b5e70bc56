// Capacity (system admins): what each engine pool is doing now — slots, in flight,
// queued, per-tier queues and predicted starts — and the provider keys with their state,
// drained, retired or re-enabled from here. Refreshes every 5 s while the page is open;
// only what changed is redrawn, so a button is not replaced under the pointer.

import { api, seg, query } from './api.js';
import { h, replace, fmtInt, fmtPercent, timeEl, humanize } from './dom.js';
import { pageHeader, card, table, td, num, loading, errorBox, emptyState, confirmDialog, notify, errorText, button, badge } from './ui.js';

const REFRESH_MS = 5000;

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return 'now';
  if (ms < 1000) return `${fmtInt(ms)} ms`;
  return `${(ms / 1000).toLocaleString(undefined, { maximumFractionDigits: 1 })} s`;
}

export function render(main) {
  let timer = null;
  let busy = false;
  let closed = false;
  const poolCards = new Map(); // pool id → {json, element}
  const keyRows = new Map(); // key id → {json, element}

  const refresh = button('Refresh', { id: 'capacity-refresh', onclick: () => refreshAll(true) });
  const updated = h('span', { class: 'muted', 'aria-live': 'polite' });
  main.append(pageHeader('Capacity', 'Engine pools and provider keys, live. Refreshes every 5 seconds.', updated, refresh));

  const poolsBox = h('div', { id: 'capacity-pools', class: 'pool-grid' }, loading('Loading engine pools…'));
  main.append(h('section', { class: 'section' }, h('h2', { class: 'section-title' }, 'Engine pools'), poolsBox));

  const showRetired = h('input', { type: 'checkbox', id: 'pk-show-retired' });
  showRetired.addEventListener('change', () => {
    keyRows.clear();
    refreshAll(true);
  });
  const keysArea = h('div', null, loading('Loading provider keys…'));
  const revisionNote = h('span', { class: 'muted' });
  main.append(h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Provider keys'),
      h('div', { class: 'card-head-end' }, revisionNote, h('label', { class: 'check', for: 'pk-show-retired' }, showRetired, 'Show retired'))),
    keysArea));

  refreshAll(true);
  timer = setInterval(() => {
    if (!document.hidden && !document.getElementById('confirm-dialog')) refreshAll(false);
  }, REFRESH_MS);

  let again = false;
  async function refreshAll(manual) {
    if (closed) return;
    if (busy) {
      again = again || manual;
      return;
    }
    busy = true;
    if (manual) refresh.disabled = true;
    const [pools, keys] = await Promise.allSettled([
      api.get('/admin/v1/pools'),
      api.get('/admin/v1/provider-keys' + query({ include_retired: showRetired.checked ? 'true' : '' })),
    ]);
    busy = false;
    refresh.disabled = false;
    if (closed) return;
    if (pools.status === 'fulfilled') drawPools(pools.value.data || []);
    else { poolCards.clear(); replace(poolsBox, errorBox(pools.reason)); }
    if (keys.status === 'fulfilled') drawKeys(keys.value);
    else { keyRows.clear(); replace(keysArea, errorBox(keys.reason)); }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    if (again) {
      again = false;
      refreshAll(true);
    }
  }

  // ---------------------------------------------------------------- pools

  function drawPools(pools) {
    if (!pools.length) {
      poolCards.clear();
      replace(poolsBox, emptyState('No engine pools are configured: every model is served by external providers.'));
      return;
    }
    if (poolsBox.querySelector('.loading, .error-box, .empty')) poolsBox.replaceChildren();
    const seen = new Set();
    pools.forEach((pool, index) => {
      seen.add(pool.id);
      const json = JSON.stringify(pool);
      const known = poolCards.get(pool.id);
      if (known && known.json === json) return;
      const fresh = poolCard(pool);
      const element = known ? known.element : fresh;
      if (known) {
        const open = element.querySelector('details')?.open;
        element.replaceChildren(...fresh.children);
        if (open) element.querySelector('details').open = true;
      } else {
        poolsBox.insertBefore(element, poolsBox.children[index] || null);
      }
      poolCards.set(pool.id, { json, element });
    });
    for (const [id, entry] of poolCards) {
      if (!seen.has(id)) {
        entry.element.remove();
        poolCards.delete(id);
      }
    }
  }

  function poolCard(pool) {
    const busyShare = pool.slots > 0 ? Math.min(1, pool.in_flight / pool.slots) : 0;
    const fill = h('div', { class: 'meter-fill' });
    fill.style.width = `${busyShare * 100}%`;
    const queueShare = pool.max_queue > 0 ? Math.min(1, pool.queued / pool.max_queue) : 0;
    const queueFill = h('div', { class: ['meter-fill', 'meter-queue', queueShare > 0.8 && 'meter-hot'] });
    queueFill.style.width = `${queueShare * 100}%`;
    return h('article', { class: 'card pool-card', dataset: { poolId: pool.id } },
      h('div', { class: 'card-head' },
        h('h3', { class: 'card-title' }, h('code', null, pool.id)),
        badge(pool.scheduling, 'neutral')),
      h('div', { class: 'pool-stats' },
        figure('Slots', fmtInt(pool.slots), 'pool-slots'),
        figure('In flight', fmtInt(pool.in_flight), 'pool-in-flight'),
        figure('Queued', `${fmtInt(pool.queued)} / ${fmtInt(pool.max_queue)}`, 'pool-queued'),
        figure('Slot held', fmtMs(pool.service_time_ms), 'pool-service')),
      h('div', { class: 'meter', title: `${fmtPercent(busyShare)} of the slots busy` }, fill),
      h('div', { class: 'meter meter-thin', title: `${fmtPercent(queueShare)} of the queue used` }, queueFill),
      table({
        caption: `Tiers of ${pool.id}`,
        attrs: { class: 'table-compact pool-tiers' },
        columns: [{ label: 'Tier' }, { label: 'Band', numeric: true }, { label: 'Reserved', numeric: true },
          { label: 'In flight', numeric: true }, { label: 'Queued', numeric: true }, { label: 'Start in', numeric: true }],
        rows: (pool.tiers || []).map((tier) => h('tr', { dataset: { tier: tier.name } },
          td(tier.name, 'cell-strong'),
          num(fmtInt(tier.band)),
          num(fmtPercent(tier.reserved_share, 0)),
          num(fmtInt(tier.in_flight)),
          num(fmtInt(tier.queued)),
          num(fmtMs(tier.predicted_start_ms), 'tier-predicted'))),
        empty: 'No tiers.',
      }),
      (pool.replicas || []).length
        ? h('details', { class: 'replicas' }, h('summary', null, `${pool.replicas.length} replica${pool.replicas.length === 1 ? '' : 's'}`),
          h('ul', null, pool.replicas.map((r) => h('li', null, h('code', null, r.url), ` — ${fmtInt(r.in_flight)} of ${fmtInt(r.slots)} slots busy`))))
        : null);
  }

  function figure(label, value, cls) {
    return h('div', { class: ['figure', cls] }, h('span', { class: 'figure-value' }, value), h('span', { class: 'figure-label' }, label));
  }

  // ---------------------------------------------------------------- provider keys

  function drawKeys(answer) {
    const keys = (answer.data || []).slice().sort((a, b) => `${a.provider}\u0000${a.label}`.localeCompare(`${b.provider}\u0000${b.label}`));
    revisionNote.textContent = answer.revision !== undefined
      ? `revision ${answer.loaded_revision}${answer.loaded_revision === answer.revision ? '' : ` of ${answer.revision} (loading)`}`
      : '';
    let tbody = keysArea.querySelector('#provider-keys-table tbody');
    if (!tbody || !keys.length || keysArea.querySelector('.empty-row')) {
      keyRows.clear();
      replace(keysArea, table({
        id: 'provider-keys-table',
        caption: 'Provider keys',
        columns: [
          { label: 'Provider' }, { label: 'Label' }, { label: 'Key' }, { label: 'State' }, { label: 'Reason' }, { label: 'Cooling down until' },
          { label: 'In flight', numeric: true }, { label: 'Req/min', numeric: true }, { label: 'Last error' }, { label: 'Last error at' },
          { label: '', class: 'actions' },
        ],
        rows: [],
        empty: 'No provider keys.',
      }));
      tbody = keysArea.querySelector('#provider-keys-table tbody');
      if (keys.length) tbody.replaceChildren();
    }
    const seen = new Set();
    keys.forEach((key, index) => {
      seen.add(key.id);
      const json = JSON.stringify(key);
      const known = keyRows.get(key.id);
      if (known && known.json === json) {
        if (tbody.children[index] !== known.element) tbody.insertBefore(known.element, tbody.children[index] || null);
        return;
      }
      const fresh = keyRow(key);
      // A known row keeps its element (references to it stay valid); its cells change.
      const element = known ? known.element : fresh;
      if (known) {
        element.replaceChildren(...fresh.children);
        element.dataset.state = key.state;
      }
      if (tbody.children[index] !== element) tbody.insertBefore(element, tbody.children[index] || null);
      keyRows.set(key.id, { json, element });
    });
    for (const [id, entry] of keyRows) {
      if (!seen.has(id)) {
        entry.element.remove();
        keyRows.delete(id);
      }
    }
  }

  function keyRow(key) {
    const fromEnvironment = key.source === 'environment';
    const actions = [];
    const state = key.state;
    if (!fromEnvironment && (state === 'active' || state === 'cooling_down')) {
      actions.push(button('Drain', { class: 'pk-drain btn-small', 'aria-label': `Drain ${key.label}`, onclick: () => act(key, 'drain') }));
    }
    if (state === 'draining' || state === 'disabled' || state === 'cooling_down') {
      actions.push(button('Enable', { class: 'pk-enable btn-small', 'aria-label': `Enable ${key.label}`, onclick: () => act(key, 'enable') }, 'primary'));
    }
    if (!fromEnvironment && state !== 'retired') {
      actions.push(button('Retire', { class: 'pk-retire btn-small', 'aria-label': `Retire ${key.label}`, onclick: () => act(key, 'retire') }, 'danger'));
    }
    return h('tr', { dataset: { pkId: key.id, state } },
      td(key.provider, 'pk-provider cell-strong'),
      td([key.label, fromEnvironment ? h('span', { class: 'muted', title: 'From the environment (providers.json)' }, ' · env') : null], 'pk-label'),
      td(h('code', null, `••••${key.last_four}`), 'pk-last-four'),
      td(badge(state), 'pk-state'),
      td(key.state_reason ? h('span', { class: 'wrap' }, key.state_reason) : h('span', { class: 'muted' }, '—'), 'pk-reason'),
      td(key.cooling_down_until
        ? [timeEl(key.cooling_down_until, { seconds: true }), key.cooling_down_on?.length ? h('span', { class: 'muted block' }, `on ${key.cooling_down_on.join(', ')}`) : null]
        : h('span', { class: 'muted' }, '—'), 'pk-cooling'),
      num(key.in_flight === null || key.in_flight === undefined ? '—' : fmtInt(key.in_flight), 'pk-in-flight'),
      num(key.requests_last_minute === null || key.requests_last_minute === undefined ? '—' : fmtInt(key.requests_last_minute), 'pk-rpm'),
      td(key.last_error ? h('span', { class: 'wrap error-text' }, key.last_error) : h('span', { class: 'muted' }, '—'), 'pk-last-error'),
      td(key.last_error_at ? timeEl(key.last_error_at, { relative: true }) : h('span', { class: 'muted' }, '—'), 'pk-last-error-at'),
      td(h('div', { class: 'button-row' }, actions), 'actions'));
  }

  async function act(key, action) {
    if (action === 'retire') {
      const yes = await confirmDialog({
        title: `Retire ${key.provider} key “${key.label}”?`,
        message: 'It leaves the pool for good and its sealed copy is erased. Requests in flight finish. This cannot be undone.',
        confirmLabel: 'Retire key',
        danger: true,
      });
      if (!yes) return;
    }
    try {
      await api.post(`/admin/v1/provider-keys/${seg(key.id)}/${action}`);
      notify(`${key.label}: ${humanize({ drain: 'draining', retire: 'retired', enable: 'enabled' }[action])}.`, 'success');
    } catch (error) {
      notify(errorText(error), 'error');
    }
    refreshAll(true);
  }

  return () => {
    closed = true;
    clearInterval(timer);
  };
}
