/**
 * `bench --compare`: which runs to make (`seesaw:P2-T2,static:T2,static:P2`) and the side-by-side
 * table of their results, one column per run, so configurations are read across a line.
 */
import { formatParallelConfig, type ParallelConfig, parseParallelConfig } from '@seesaw/model';
import { UsageError } from './args.ts';
import { formatByteSize } from './byte-size.ts';
import type { BenchResult } from './commands/bench.ts';
import { swapInHiddenByteFraction, swapInHiddenFraction } from './engine-session.ts';
import { checkSeesawPair } from './seesaw-flags.ts';
import { throughputRates } from './throughput-report.ts';

/** One run of a comparison: a Seesaw pair (prefill layout -> decode layout) or one static layout. */
export type CompareSpec =
  | { kind: 'seesaw'; label: string; prefill: ParallelConfig; decode: ParallelConfig }
  | { kind: 'static'; label: string; parallel: ParallelConfig };

function parseConfig(text: string, entry: string): ParallelConfig {
  try {
    return parseParallelConfig(text);
  } catch (error) {
    throw new UsageError(`--compare '${entry}': ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * `seesaw:P2-T2` (also `seesaw:P2->T2`) and `static:T2`, comma separated. Labels are normalised
 * (`seesaw:D1T1P2-D1T2P1` prints as `seesaw:P2-T2`); the same run twice is a usage error.
 */
export function parseCompareSpecs(text: string): CompareSpec[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0)
    throw new UsageError('--compare needs at least one run, e.g. seesaw:P2-T2,static:T2');
  const specs = entries.map((entry): CompareSpec => {
    const colon = entry.indexOf(':');
    const kind = colon < 0 ? '' : entry.slice(0, colon);
    const body = colon < 0 ? '' : entry.slice(colon + 1);
    if (kind === 'static') {
      const parallel = parseConfig(body, entry);
      return { kind, label: `static:${formatParallelConfig(parallel)}`, parallel };
    }
    if (kind === 'seesaw') {
      const parts = body.split(/->|-/);
      if (parts.length !== 2) {
        throw new UsageError(`--compare '${entry}': a seesaw run is PREFILL-DECODE, e.g. seesaw:P2-T2`);
      }
      const prefill = parseConfig(parts[0], entry);
      const decode = parseConfig(parts[1], entry);
      const problem = checkSeesawPair(prefill, decode);
      if (problem !== null) throw new UsageError(`--compare '${entry}': ${problem}`);
      const label = `seesaw:${formatParallelConfig(prefill)}-${formatParallelConfig(decode)}`;
      return { kind, label, prefill, decode };
    }
    throw new UsageError(`--compare '${entry}': each run is seesaw:PREFILL-DECODE or static:CONFIG`);
  });
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.label)) throw new UsageError(`--compare lists ${spec.label} twice`);
    seen.add(spec.label);
  }
  return specs;
}

/** What one run of a comparison measured. Times are wall seconds of the run. */
export interface CompareRow {
  label: string;
  numRequests: number;
  elapsedSeconds: number;
  requestsPerSecond: number;
  totalTokensPerSecond: number;
  outputTokensPerSecond: number;
  numSwitches: number;
  /** Per replica: Seesaw, wall time in each phase; static, device time of prefill-carrying and decode-only steps per engine. */
  prefillSeconds: number;
  decodeSeconds: number;
  reshardSeconds: number;
  /** Steps waiting for KV transfers (prefetches not done, write-backs not acknowledged). */
  kvWaitSeconds: number;
  /** Share of the prefetched sequences steps needed whose KV had landed first; null: none needed. */
  swapInHiddenFraction: number | null;
  /** The same share by bytes. */
  swapInHiddenByteFraction: number | null;
  /** Largest weights + KV cache one device held. */
  peakDeviceMemoryBytes: number;
  /** The host KV tier's size (0: none). */
  hostKvMemoryBytes: number;
  /** Host-tier bytes moved per token position written back, prefetched or swapped (halved by 16-bit KV); null: none moved. */
  kvBytesPerMovedToken: number | null;
}

/** A bench result as one column of the table (`figures` absent: a run without phase figures). */
export function compareRowOf(label: string, result: BenchResult): CompareRow {
  const rates = throughputRates(result);
  const figures = result.figures;
  return {
    label,
    numRequests: result.numRequests,
    elapsedSeconds: result.elapsedMs / 1000,
    requestsPerSecond: rates.requestsPerSecond,
    totalTokensPerSecond: rates.totalTokensPerSecond,
    outputTokensPerSecond: rates.outputTokensPerSecond,
    numSwitches: figures?.numSwitches ?? 0,
    prefillSeconds: (figures?.prefillMs ?? result.phases.prefillSeconds * 1000) / 1000,
    decodeSeconds: (figures?.decodeMs ?? result.phases.decodeSeconds * 1000) / 1000,
    reshardSeconds: (figures?.reshardMs ?? 0) / 1000,
    kvWaitSeconds: (figures?.kvWaitMs ?? 0) / 1000,
    swapInHiddenFraction: figures === undefined ? null : swapInHiddenFraction(figures),
    swapInHiddenByteFraction: figures === undefined ? null : swapInHiddenByteFraction(figures),
    peakDeviceMemoryBytes: figures?.peakDeviceMemoryBytes ?? result.weightBytes + result.kvCacheBytes,
    hostKvMemoryBytes: figures?.hostKvBytes ?? 0,
    kvBytesPerMovedToken: result.kvMoved.tokens > 0 ? result.kvMoved.bytes / result.kvMoved.tokens : null,
  };
}

const fixed = (digits: number) => (value: number) => value.toFixed(digits);
const seconds = (value: number) => `${value.toFixed(2)} s`;
const percent = (value: number | null) => (value === null ? '-' : `${(value * 100).toFixed(1)}%`);

/** One line of the table: its label and each run's cell. */
export interface TableLine {
  label: string;
  cell: (row: CompareRow) => string;
}

const TABLE_LINES: TableLine[] = [
  { label: 'Requests', cell: (row) => String(row.numRequests) },
  { label: 'Elapsed', cell: (row) => seconds(row.elapsedSeconds) },
  { label: 'Requests/s', cell: (row) => fixed(2)(row.requestsPerSecond) },
  { label: 'Total tokens/s', cell: (row) => fixed(2)(row.totalTokensPerSecond) },
  { label: 'Output tokens/s', cell: (row) => fixed(2)(row.outputTokensPerSecond) },
  // What a Seesaw run's policy and phases reach once the re-shards' wall time is taken out (the
  // re-shard has its own benchmark, bench:reshard): the part of the gap to a static layout left.
  { label: 'Total tokens/s less re-shards', cell: (row) => fixed(2)(tokensPerSecondLessReshards(row)) },
  { label: 'Phase switches', cell: (row) => String(row.numSwitches) },
  { label: 'Time in prefill', cell: (row) => seconds(row.prefillSeconds) },
  { label: 'Time in decode', cell: (row) => seconds(row.decodeSeconds) },
  { label: 'Time re-sharding', cell: (row) => seconds(row.reshardSeconds) },
  { label: 'Time waiting for KV', cell: (row) => seconds(row.kvWaitSeconds) },
  { label: 'Swap-in hidden (sequences)', cell: (row) => percent(row.swapInHiddenFraction) },
  { label: 'Swap-in hidden (bytes)', cell: (row) => percent(row.swapInHiddenByteFraction) },
  { label: 'Peak device memory', cell: (row) => formatByteSize(row.peakDeviceMemoryBytes) },
  {
    label: 'Host KV memory',
    cell: (row) => (row.hostKvMemoryBytes > 0 ? formatByteSize(row.hostKvMemoryBytes) : '-'),
  },
  {
    label: 'KV bytes per swapped token',
    cell: (row) => (row.kvBytesPerMovedToken === null ? '-' : String(Math.round(row.kvBytesPerMovedToken))),
  },
];

/** Total tokens over the run's elapsed time less its re-shards (a static run's own rate). */
export function tokensPerSecondLessReshards(row: CompareRow): number {
  const seconds = row.elapsedSeconds - row.reshardSeconds;
  return seconds > 0 ? (row.totalTokensPerSecond * row.elapsedSeconds) / seconds : 0;
}

/** The highest total tokens/s of the static runs, or null when the comparison has none. */
export function bestStaticTokensPerSecond(rows: readonly CompareRow[]): number | null {
  const statics = rows.filter((row) => row.label.startsWith('static:'));
  return statics.length === 0 ? null : Math.max(...statics.map((row) => row.totalTokensPerSecond));
}

/**
 * Metrics down, runs across, as text cells (the header line first); then the speed-up over the
 * first run and the share of the best static layout, then `extraLines` (a comparison's rounds).
 */
export function compareGrid(rows: readonly CompareRow[], extraLines: readonly TableLine[] = []): string[][] {
  if (rows.length === 0) return [];
  const base = rows[0].totalTokensPerSecond;
  const lines = [...TABLE_LINES];
  if (rows.length > 1) {
    lines.push({
      label: `Speed-up vs ${rows[0].label}`,
      cell: (row: CompareRow) => (base > 0 ? `${(row.totalTokensPerSecond / base).toFixed(2)}x` : '-'),
    });
  }
  // The measure: each run against the best static layout measured in the same comparison.
  const bestStatic = bestStaticTokensPerSecond(rows);
  if (bestStatic !== null && bestStatic > 0) {
    lines.push({
      label: 'Share of best static',
      cell: (row: CompareRow) => `${(row.totalTokensPerSecond / bestStatic).toFixed(2)}x`,
    });
  }
  lines.push(...extraLines);
  return [
    ['', ...rows.map((row) => row.label)],
    ...lines.map((line) => [line.label, ...rows.map(line.cell)]),
  ];
}

/** compareGrid as aligned text: labels left, cells right-aligned so numbers line up. */
export function formatCompareTable(
  rows: readonly CompareRow[],
  extraLines: readonly TableLine[] = [],
): string {
  const grid = compareGrid(rows, extraLines);
  if (grid.length === 0) return '';
  const widths = grid[0].map((_, column) => Math.max(...grid.map((cells) => cells[column].length)));
  return `${grid
    .map((cells) =>
      cells
        .map((cell, column) => (column === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[column])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** The rows for --json, in the snake_case of bench's own JSON. */
export function compareJson(rows: readonly CompareRow[]): Array<Record<string, number | string | null>> {
  return rows.map((row) => ({
    run: row.label,
    num_requests: row.numRequests,
    elapsed_time: row.elapsedSeconds,
    requests_per_second: row.requestsPerSecond,
    tokens_per_second: row.totalTokensPerSecond,
    output_tokens_per_second: row.outputTokensPerSecond,
    tokens_per_second_less_reshards: tokensPerSecondLessReshards(row),
    num_switches: row.numSwitches,
    prefill_seconds: row.prefillSeconds,
    decode_seconds: row.decodeSeconds,
    reshard_seconds: row.reshardSeconds,
    kv_wait_seconds: row.kvWaitSeconds,
    swap_in_hidden_fraction: row.swapInHiddenFraction,
    swap_in_hidden_byte_fraction: row.swapInHiddenByteFraction,
    peak_device_memory_bytes: row.peakDeviceMemoryBytes,
    host_kv_memory_bytes: row.hostKvMemoryBytes,
    kv_bytes_per_moved_token: row.kvBytesPerMovedToken,
  }));
}
