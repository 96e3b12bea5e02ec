/**
 * The rows `pnpm bench:reshard` measures (one per route, cache setting and direction) and how it
 * prints them: the switch table, then the slowest device's time by phase. Column meanings are in
 * reshard-bench.ts's header.
 */
import { formatBytes } from '@seesaw/coordinator';
import type { ReshardRoute } from '@seesaw/model';

/** ReshardDone's phase figures, in the order the phase table prints them. */
export const PHASES = ['sendMs', 'waitMs', 'assembleMs', 'otherMs', 'hostFillMs', 'createDeviceMs'] as const;

export interface MeasuredRates {
  p2pBytesPerSecond: number;
  /** Checkpoint reads (no host weight cache). */
  hostReadBytesPerSecond: number;
  /** Copies out of the host weight cache into touched memory. */
  hostMemcpyBytesPerSecond: number;
  /** Copies into never-touched memory (a device's new weight pages). */
  freshPageBytesPerSecond: number;
}

export interface DirectionRow {
  route: ReshardRoute;
  hostWeightCache: boolean;
  direction: string;
  bytesFromPeers: number;
  bytesFromHost: number;
  /** Coordinator ms of every timed switch in this direction; medianMs is their median. */
  switchMs: number[];
  medianMs: number;
  /** The warm-up round trip's switch in this direction. */
  coldMs: number;
  /** Median over timed rounds of the slowest device's phases (reshardDone). */
  phaseMs: Record<(typeof PHASES)[number], number>;
  /** Weight-arena fallbacks over all devices and timed rounds. */
  arenaFallbacks: number;
  /** Median over timed rounds of the process's minor page faults during a switch, x 4 KiB. */
  faultedBytes: number;
  deviceMs: number;
  effectiveGBps: number;
  modelledSeconds: number;
  linkMs: number;
  /** The busiest device's own bytes over the same rates: its links if each device has its own. */
  deviceLinkMs: number;
  freshMs: number;
}

export function printTable(rows: DirectionRow[], measured: MeasuredRates): void {
  const gbps = (bytesPerSecond: number) => `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
  console.log(
    `links: p2p ${gbps(measured.p2pBytesPerSecond)}, host cache memcpy ${gbps(measured.hostMemcpyBytesPerSecond)}, ` +
      `host checkpoint read ${gbps(measured.hostReadBytesPerSecond)}; ` +
      `copy into fresh pages ${gbps(measured.freshPageBytesPerSecond)}`,
  );
  const header = [
    'route',
    'cache',
    'direction',
    'p2p',
    'host',
    'cold ms',
    'switch ms',
    'device ms',
    'link ms',
    'x link',
    'best ms',
    'best x',
    'x dev link',
    'fresh ms',
    'faulted MiB',
    'GB/s',
    'model ms',
    'each timed round ms',
  ];
  const lines = rows.map((row) => [
    ...rowKey(row),
    formatBytes(row.bytesFromPeers),
    formatBytes(row.bytesFromHost),
    row.coldMs.toFixed(1),
    row.medianMs.toFixed(1),
    row.deviceMs.toFixed(1),
    row.linkMs.toFixed(1),
    (row.medianMs / row.linkMs).toFixed(2),
    Math.min(...row.switchMs).toFixed(1),
    (Math.min(...row.switchMs) / row.linkMs).toFixed(2),
    (row.medianMs / row.deviceLinkMs).toFixed(2),
    row.freshMs.toFixed(1),
    (row.faultedBytes / 2 ** 20).toFixed(1),
    row.effectiveGBps.toFixed(2),
    (row.modelledSeconds * 1000).toFixed(1),
    row.switchMs.map((ms) => ms.toFixed(0)).join(' '),
  ]);
  printColumns(header, lines);
  console.log('slowest device by phase (median ms over timed rounds), weight-arena fallbacks:');
  const phaseHeader = [
    'route',
    'cache',
    'direction',
    'send',
    'wait',
    'assemble',
    'other',
    'host fill',
    'device',
    'fallbacks',
  ];
  const phaseLines = rows.map((row) => [
    ...rowKey(row),
    ...PHASES.map((phase) => row.phaseMs[phase].toFixed(1)),
    String(row.arenaFallbacks),
  ]);
  printColumns(phaseHeader, phaseLines);
}

/** The columns that name a row: route, host weight cache, direction. */
function rowKey(row: DirectionRow): string[] {
  return [row.route, row.hostWeightCache ? 'on' : 'off', row.direction];
}

/** Prints `header` and `lines` as left-aligned columns two spaces apart. */
function printColumns(header: string[], lines: string[][]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  for (const line of [header, ...lines])
    console.log(
      line
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
}
