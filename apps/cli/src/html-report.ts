/**
 * `--report FILE.html`: one self-contained page (inline CSS and SVG, no script, no external
 * reference of any kind) with the summary table and, per run, tokens/s over time in 1 s buckets
 * (finer for runs under 10 s; stacked: prefill-phase steps under decode steps) and the phase
 * timeline of every replica.
 */
import type { TraceEvent } from '@seesaw/coordinator';
import {
  chooseBucketMs,
  type PhaseRow,
  phaseRows,
  type ThroughputBucket,
  throughputSeries,
  timeRange,
} from './report-series.ts';

/** The table at the top: header cells, then one line per metric (first cell the label). */
export interface ReportSummary {
  title: string;
  /** A line under the title (model, workload, machine). */
  subtitle?: string;
  table: string[][];
}

export interface ReportRun {
  name: string;
  events: readonly TraceEvent[];
}

const CHART_WIDTH = 880;
const PLOT_LEFT = 64;
const PLOT_RIGHT = 16;
const PLOT_WIDTH = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT;
const CHART_HEIGHT = 220;
const PLOT_TOP = 12;
const PLOT_BOTTOM = 28;
const ROW_HEIGHT = 22;

const COLORS = { prefill: '#3b73c4', decode: '#e08a2c', reshard: '#c23b3b' } as const;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
h3 { font-size: 13px; margin: 12px 0 4px; color: #555; font-weight: 600; }
.subtitle { color: #555; margin: 0 0 16px; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
th { background: #f4f4f6; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.axis { stroke: #999; stroke-width: 1; }
.grid { stroke: #eee; stroke-width: 1; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.empty { color: #888; font-style: italic; }
`;

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const num = (value: number) => (Math.round(value * 10) / 10).toString();

/** A 1/2/5 x 10^k step giving about `target` ticks over [0, range]. */
export function niceStep(range: number, target = 6): number {
  if (!(range > 0)) return 1;
  const raw = range / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
  return step ?? 10 * power;
}

function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}

/** x of a time, ms from the run's start over [0, spanMs]. */
function xScale(spanMs: number): (ms: number) => number {
  const span = spanMs > 0 ? spanMs : 1;
  return (ms) => PLOT_LEFT + (Math.min(Math.max(ms, 0), span) / span) * PLOT_WIDTH;
}

function timeAxis(spanMs: number, y: number, x: (ms: number) => number): string {
  const step = niceStep(spanMs / 1000) * 1000;
  const parts = [`<line class="axis" x1="${PLOT_LEFT}" y1="${y}" x2="${PLOT_LEFT + PLOT_WIDTH}" y2="${y}"/>`];
  for (let ms = 0; ms <= spanMs + 1e-9; ms += step) {
    parts.push(
      `<line class="axis" x1="${num(x(ms))}" y1="${y}" x2="${num(x(ms))}" y2="${y + 4}"/>`,
      `<text x="${num(x(ms))}" y="${y + 16}" text-anchor="middle">${formatSeconds(ms)}</text>`,
    );
  }
  return parts.join('');
}

function throughputChart(buckets: readonly ThroughputBucket[], spanMs: number, bucketMs: number): string {
  const x = xScale(spanMs);
  const peak = Math.max(0, ...buckets.map((b) => b.prefillTokensPerSecond + b.decodeTokensPerSecond));
  const step = niceStep(peak, 4);
  const top = peak > 0 ? Math.ceil(peak / step) * step : 1;
  const plotHeight = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM;
  const y = (value: number) => PLOT_TOP + plotHeight - (value / top) * plotHeight;
  const parts: string[] = [];
  for (let value = 0; value <= top + 1e-9; value += step) {
    parts.push(
      `<line class="grid" x1="${PLOT_LEFT}" y1="${num(y(value))}" x2="${PLOT_LEFT + PLOT_WIDTH}" y2="${num(y(value))}"/>`,
      `<text x="${PLOT_LEFT - 6}" y="${num(y(value) + 4)}" text-anchor="end">${num(value)}</text>`,
    );
  }
  for (const bucket of buckets) {
    const left = x(bucket.startMs);
    const width = Math.max(0, x(bucket.startMs + bucketMs) - left - 1);
    const prefillTop = y(bucket.prefillTokensPerSecond);
    const total = y(bucket.prefillTokensPerSecond + bucket.decodeTokensPerSecond);
    const tip = `${formatSeconds(bucket.startMs)}: ${num(bucket.prefillTokensPerSecond)} prefill + ${num(bucket.decodeTokensPerSecond)} decode tokens/s`;
    if (bucket.prefillTokensPerSecond > 0) {
      parts.push(
        `<rect x="${num(left)}" y="${num(prefillTop)}" width="${num(width)}" height="${num(y(0) - prefillTop)}" fill="${COLORS.prefill}"><title>${tip}</title></rect>`,
      );
    }
    if (bucket.decodeTokensPerSecond > 0) {
      parts.push(
        `<rect x="${num(left)}" y="${num(total)}" width="${num(width)}" height="${num(prefillTop - total)}" fill="${COLORS.decode}"><title>${tip}</title></rect>`,
      );
    }
  }
  parts.push(`<line class="axis" x1="${PLOT_LEFT}" y1="${PLOT_TOP}" x2="${PLOT_LEFT}" y2="${num(y(0))}"/>`);
  parts.push(timeAxis(spanMs, y(0), x));
  parts.push(
    `<text x="12" y="${num(PLOT_TOP + plotHeight / 2)}" transform="rotate(-90 12 ${num(PLOT_TOP + plotHeight / 2)})" text-anchor="middle">tokens/s</text>`,
  );
  return `<svg role="img" aria-label="tokens per second over time" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}">${parts.join('')}</svg>`;
}

function phaseTimeline(rows: readonly PhaseRow[], spanMs: number): string {
  const x = xScale(spanMs);
  const height = PLOT_TOP + rows.length * ROW_HEIGHT + PLOT_BOTTOM;
  const parts: string[] = [];
  rows.forEach((row, index) => {
    const top = PLOT_TOP + index * ROW_HEIGHT;
    parts.push(
      `<text x="${PLOT_LEFT - 6}" y="${top + 15}" text-anchor="end">${escapeHtml(row.track)}</text>`,
    );
    for (const band of row.bands) {
      const left = x(band.startMs);
      // At least half a pixel, so a short re-shard stays visible.
      const width = Math.max(0.5, x(band.endMs) - left);
      const tip = `${band.category} ${formatSeconds(band.startMs)} - ${formatSeconds(band.endMs)}`;
      parts.push(
        `<rect x="${num(left)}" y="${top + 2}" width="${num(width)}" height="${ROW_HEIGHT - 4}" fill="${COLORS[band.category]}"><title>${tip}</title></rect>`,
      );
    }
  });
  parts.push(timeAxis(spanMs, PLOT_TOP + rows.length * ROW_HEIGHT, x));
  return `<svg role="img" aria-label="phase timeline" width="${CHART_WIDTH}" height="${height}" viewBox="0 0 ${CHART_WIDTH} ${height}">${parts.join('')}</svg>`;
}

function legend(): string {
  const items = Object.entries(COLORS).map(
    ([name, color]) =>
      `<span><i style="background:${color}"></i>${name === 'reshard' ? 're-shard' : name}</span>`,
  );
  return `<p class="legend">${items.join('')}</p>`;
}

function summaryTable(table: readonly string[][]): string {
  if (table.length === 0) return '';
  const [header, ...lines] = table;
  const head = `<tr>${header.map((cell) => `<th>${escapeHtml(cell)}</th>`).join('')}</tr>`;
  const body = lines.map(
    (cells) => `<tr>${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`,
  );
  return `<table><thead>${head}</thead><tbody>${body.join('')}</tbody></table>`;
}

/** One run's charts on a time axis of spanMs (the longest run's, so runs line up). */
function runSection(run: ReportRun, bucketMs: number, spanMs: number, isOnlyRun: boolean): string {
  const heading = isOnlyRun ? '' : `<h2>${escapeHtml(run.name)}</h2>`;
  if (!run.events.some((event) => event.category === 'prefill' || event.category === 'decode')) {
    return `${heading}<p class="empty">No steps were recorded.</p>`;
  }
  return [
    heading,
    `<h3>Throughput (tokens/s, ${formatSeconds(bucketMs)} buckets)</h3>`,
    throughputChart(throughputSeries(run.events, bucketMs), spanMs, bucketMs),
    '<h3>Phase timeline</h3>',
    phaseTimeline(phaseRows(run.events), spanMs),
  ].join('\n');
}

/**
 * The page for several runs (bench --compare): the summary table, then one section per run.
 * Every run is drawn on the longest run's time axis, in the same buckets (`bucketMs`, or chosen
 * from that span: 1 s from 10 s up), so runs compare bar for bar.
 */
export function renderReportOfRuns(
  runs: readonly ReportRun[],
  summary: ReportSummary,
  bucketMs?: number,
): string {
  const spanMs = Math.max(0, ...runs.map((run) => timeRange(run.events).endMs));
  const bucket = bucketMs ?? chooseBucketMs(spanMs);
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(summary.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(summary.title)}</h1>`,
    summary.subtitle === undefined ? '' : `<p class="subtitle">${escapeHtml(summary.subtitle)}</p>`,
    summaryTable(summary.table),
    legend(),
    ...runs.map((run) => runSection(run, bucket, spanMs, runs.length === 1)),
    '</body></html>',
    '',
  ].join('\n');
}

/** The page for one run. */
export function renderReport(
  events: readonly TraceEvent[],
  summary: ReportSummary,
  bucketMs?: number,
): string {
  return renderReportOfRuns([{ name: summary.title, events }], summary, bucketMs);
}
