// A small SVG bar chart: one group of bars per category (a day), stacked or side by side
// per series, with a y axis of round ticks, x labels, a legend and <title> tooltips.
// Colours come from CSS classes (.series-0 … .series-9), so the chart follows the theme.

import { s, fmtCompact } from './dom.js';

const WIDTH = 960;
const PALETTE_SIZE = 10;

/** Round tick values from 0 to at least `max`: 0, 250, 500, 750, 1000. */
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= rough) ?? 10 * magnitude;
  const ticks = [];
  for (let value = 0; value < max + step * 0.999; value += step) ticks.push(Number(value.toPrecision(12)));
  return ticks;
}

/**
 * barChart({
 *   id, title,                       // the <svg>'s id and accessible name
 *   categories: ['2026-11-01', …],   // the x axis, in order
 *   categoryLabel: (c) => 'Nov 1',   // how an x label reads
 *   series: [{name, values: [number per category], texts?: [tooltip text per category]}],
 *   mode: 'stacked' | 'grouped',
 *   formatValue: (n) => '1.2k',      // tooltip and axis text when no `texts`
 *   formatTick: (n) => '1k',
 *   emptyText: 'No usage',
 * })
 */
export function barChart({
  id, title, categories, categoryLabel = String, series, mode = 'stacked',
  formatValue = (v) => String(v), formatTick = fmtCompact, emptyText = 'Nothing to show', height = 320,
}) {
  const legendRows = Math.max(1, Math.ceil(series.length / 5));
  const margin = { top: 16 + legendRows * 22, right: 16, bottom: 44, left: 72 };
  const plotWidth = WIDTH - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;

  const svg = s('svg', {
    id, class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': title,
    preserveAspectRatio: 'xMidYMid meet',
  });
  svg.appendChild(s('title', null, title));

  const totals = categories.map((_, i) => series.reduce((sum, serie) => sum + (serie.values[i] || 0), 0));
  const max = mode === 'stacked'
    ? Math.max(0, ...totals)
    : Math.max(0, ...series.flatMap((serie) => serie.values.map((v) => v || 0)));

  // Legend, wrapped every five series.
  const legend = s('g', { class: 'chart-legend' });
  series.forEach((serie, index) => {
    const x = margin.left + (index % 5) * (plotWidth / 5);
    const y = 10 + Math.floor(index / 5) * 22;
    const item = s('g', { transform: `translate(${x},${y})` },
      s('rect', { width: 12, height: 12, rx: 2, class: `series-${index % PALETTE_SIZE}` }),
      s('text', { x: 18, y: 10.5, class: 'chart-legend-text' }, truncate(serie.name, 26)));
    item.appendChild(s('title', null, serie.name));
    legend.appendChild(item);
  });
  svg.appendChild(legend);

  const plot = s('g', { transform: `translate(${margin.left},${margin.top})` });
  svg.appendChild(plot);

  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1] || 1;
  const yOf = (value) => plotHeight - (value / top) * plotHeight;

  // Grid lines and y labels.
  const grid = s('g', { class: 'chart-grid' });
  for (const tick of ticks) {
    const y = yOf(tick);
    grid.appendChild(s('line', { x1: 0, x2: plotWidth, y1: y, y2: y, class: tick === 0 ? 'chart-axis' : 'chart-gridline' }));
    grid.appendChild(s('text', { x: -8, y: y + 4, class: 'chart-tick', 'text-anchor': 'end' }, formatTick(tick)));
  }
  plot.appendChild(grid);

  if (!categories.length || !(max > 0)) {
    plot.appendChild(s('text', { x: plotWidth / 2, y: plotHeight / 2, class: 'chart-empty', 'text-anchor': 'middle' }, emptyText));
    return svg;
  }

  const band = plotWidth / categories.length;
  const barWidth = Math.max(1, Math.min(48, band * 0.72));
  const labelEvery = Math.max(1, Math.ceil(categories.length / Math.floor(plotWidth / 64)));
  const bars = s('g', { class: 'chart-bars' });

  categories.forEach((category, i) => {
    const x0 = i * band + (band - barWidth) / 2;
    const label = categoryLabel(category);
    if (mode === 'stacked') {
      let base = 0;
      series.forEach((serie, index) => {
        const value = serie.values[i] || 0;
        if (value <= 0) return;
        const y = yOf(base + value);
        const rect = s('rect', {
          x: x0, y, width: barWidth, height: Math.max(0.5, yOf(base) - y), class: `bar series-${index % PALETTE_SIZE}`,
        });
        rect.appendChild(s('title', null, `${label} · ${serie.name}: ${serie.texts ? serie.texts[i] : formatValue(value)}`));
        bars.appendChild(rect);
        base += value;
      });
    } else {
      const width = barWidth / Math.max(1, series.length);
      series.forEach((serie, index) => {
        const value = serie.values[i] || 0;
        if (value <= 0) return;
        const y = yOf(value);
        const rect = s('rect', {
          x: x0 + index * width, y, width: Math.max(0.5, width - 1), height: Math.max(0.5, plotHeight - y),
          class: `bar series-${index % PALETTE_SIZE}`,
        });
        rect.appendChild(s('title', null, `${label} · ${serie.name}: ${serie.texts ? serie.texts[i] : formatValue(value)}`));
        bars.appendChild(rect);
      });
    }
    const lastLabel = i === categories.length - 1 && i % labelEvery >= Math.ceil(labelEvery / 2);
    if (i % labelEvery === 0 || lastLabel) {
      plot.appendChild(s('text', { x: i * band + band / 2, y: plotHeight + 18, class: 'chart-tick', 'text-anchor': 'middle' }, label));
    }
  });
  plot.appendChild(bars);
  return svg;
}

function truncate(text, length) {
  const value = String(text);
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}
