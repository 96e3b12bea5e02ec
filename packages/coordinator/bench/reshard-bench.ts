/**
 * Re-shard route benchmark: a phased LocalCluster (real device workers) switching prefill <->
 * decode layouts by each weight route, against the planner's modelled time at the link rates
 * measured in the same run (or --p2p-gbps / --host-gbps, 1e9 B/s), which 'auto' also plans with.
 *   pnpm bench:reshard [modelDir] [--devices 2|4] [--rounds N] [--json] [--p2p-gbps X] [--host-gbps Y]
 * No modelDir: the `small` bf16 model, generated into a temporary directory. Links: p2p = a 64 MiB
 * u8 weightSlice posted through a WorkerPortEndpoint to another thread, to its ack (the encode copy
 * + transfer a piece pays); host = 64 MiB of the largest tensors by Checkpoint.readBytes (page
 * cache warm, as the host route assumes). "switch ms" is the coordinator's (barrier included),
 * "device ms" the slowest device's ReshardDone.ms; GB/s = (p2p + host bytes) / switch ms.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkpointTensorBytes,
  createReshardPlanner,
  formatBytes,
  LocalCluster,
  measureReshardLinkRates,
  type ReplicaReshardStats,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import {
  Checkpoint,
  formatParallelConfig,
  generateCheckpoint,
  type ReshardLinkRates,
  type ReshardRoute,
} from '@seesaw/model';

const LINK_BYTES = 64 << 20;
const LINK_REPEATS = 5;
const ROUTES: readonly ReshardRoute[] = ['p2p', 'host', 'auto'];
/** Each device's budget: the whole checkpoint (more than a device holds mid-switch) plus this KV. */
const KV_CACHE_BYTES = 64 << 20;
const PREFILL_DECODE_PAIRS: Record<string, string[]> = {
  '2': ['P2 <-> T2'],
  '4': ['P4 <-> T4', 'P4 <-> T2P2'],
};

interface DirectionRow {
  route: ReshardRoute;
  direction: string;
  bytesFromPeers: number;
  bytesFromHost: number;
  /** Coordinator ms of every timed switch in this direction; medianMs is their median. */
  switchMs: number[];
  medianMs: number;
  deviceMs: number;
  effectiveGBps: number;
  modelledSeconds: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
}

/** One cluster: a warm-up round trip, then `rounds` timed ones; a row per direction. */
async function benchRoute(
  modelDir: string,
  [prefill, decode]: string[],
  route: ReshardRoute,
  rates: ReshardLinkRates,
  rounds: number,
): Promise<DirectionRow[]> {
  const cluster = await LocalCluster.start({
    workerUrl: deviceWorkerUrl(),
    modelDir,
    parallel: prefill,
    decodeParallel: decode,
    reshardRoute: route,
    reshardRates: rates,
    numThreadsPerDevice: 1,
    deviceMemoryBytes: Checkpoint.tensorBytesOf(modelDir) + KV_CACHE_BYTES,
    token: randomBytes(24).toString('base64url'),
    createTpGroup: createDeviceWorkerGroup,
    log: (line) => {
      if (!line.includes('accepted') && !line.startsWith('reshard')) process.stderr.write(`${line}\n`);
    },
  });
  try {
    const [replica] = cluster.phasedReplicas;
    await replica.switchTo('decode');
    await replica.switchTo('prefill');
    const [toDecode, toPrefill]: ReplicaReshardStats[][] = [[], []];
    for (let i = 0; i < rounds; i++) {
      toDecode.push(await replica.switchTo('decode'));
      toPrefill.push(await replica.switchTo('prefill'));
    }
    const planner = createReshardPlanner(cluster.config, checkpointTensorBytes(modelDir), { route, rates });
    return [toDecode, toPrefill].map((runs) => {
      const { from, to, bytesFromPeers, bytesFromHost, bytesMoved } = runs[0];
      const direction = `${formatParallelConfig(from)}->${formatParallelConfig(to)}`;
      const plan = planner(from, to);
      if (plan.bytesMoved !== bytesMoved) throw new Error(`${route} ${direction}: moved != planned bytes`);
      const switchMs = runs.map((run) => run.ms);
      const medianMs = median(switchMs);
      return {
        route,
        direction,
        bytesFromPeers,
        bytesFromHost,
        switchMs,
        medianMs,
        deviceMs: median(runs.map((run) => Math.max(...run.devices.map((device) => device.ms)))),
        effectiveGBps: bytesMoved / (medianMs / 1000) / 1e9,
        modelledSeconds: plan.seconds,
      };
    });
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}

function printTable(rows: DirectionRow[], measured: ReshardLinkRates, rates: ReshardLinkRates): void {
  const gbps = (bytesPerSecond: number) => `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
  console.log(
    `links: p2p ${gbps(measured.p2pBytesPerSecond)}, host ${gbps(measured.hostBytesPerSecond)}; ` +
      `planned with p2p ${gbps(rates.p2pBytesPerSecond)}, host ${gbps(rates.hostBytesPerSecond)}`,
  );
  const header = ['route', 'direction', 'p2p', 'host', 'switch ms', 'device ms', 'GB/s', 'model ms'];
  const lines = rows.map((row) => [
    row.route,
    row.direction,
    formatBytes(row.bytesFromPeers),
    formatBytes(row.bytesFromHost),
    row.medianMs.toFixed(1),
    row.deviceMs.toFixed(1),
    row.effectiveGBps.toFixed(2),
    (row.modelledSeconds * 1000).toFixed(1),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (line: string[]) => line.map((cell, i) => cell.padEnd(widths[i])).join('  ');
  for (const line of [header, ...lines]) console.log(format(line).trimEnd());
}

function gbpsFlag(flag: string | undefined): number | undefined {
  if (flag !== undefined && !(Number(flag) > 0)) throw new Error(`link rates are GB/s > 0, got ${flag}`);
  return flag === undefined ? undefined : Number(flag) * 1e9;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      devices: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      'p2p-gbps': { type: 'string' },
      'host-gbps': { type: 'string' },
    },
  });
  const pairs = PREFILL_DECODE_PAIRS[values.devices];
  if (!pairs) throw new Error(`--devices must be 2 or 4, got ${values.devices}`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const tempDir = positionals[0] ? undefined : mkdtempSync(join(tmpdir(), 'seesaw-reshard-bench-'));
  const modelDir = positionals[0] ?? (tempDir as string);
  try {
    if (tempDir) {
      process.stderr.write(`generating the small bf16 model in ${tempDir}\n`);
      await generateCheckpoint({ shape: 'small', seed: 0, dtype: 'bf16', outDir: tempDir });
    }
    const measured = await measureReshardLinkRates(modelDir, {
      numBytes: LINK_BYTES,
      numRepeats: LINK_REPEATS,
    });
    const rates: ReshardLinkRates = {
      p2pBytesPerSecond: gbpsFlag(values['p2p-gbps']) ?? measured.p2pBytesPerSecond,
      hostBytesPerSecond: gbpsFlag(values['host-gbps']) ?? measured.hostBytesPerSecond,
    };
    const rows: Array<DirectionRow & { pair: string }> = [];
    for (const pair of pairs) {
      for (const route of ROUTES) {
        process.stderr.write(`${pair} by ${route}: 1 warm-up + ${rounds} round trips\n`);
        const directions = await benchRoute(modelDir, pair.split(' <-> '), route, rates, rounds);
        rows.push(...directions.map((row) => ({ pair, ...row })));
      }
    }
    const modelBytes = Checkpoint.tensorBytesOf(modelDir);
    if (values.json) {
      console.log(JSON.stringify({ modelDir, modelBytes, rounds, measured, rates, rows }, null, 2));
      return;
    }
    console.log(`model ${tempDir ? 'small bf16' : modelDir}: ${formatBytes(modelBytes)} of weights`);
    printTable(rows, measured, rates);
  } finally {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

await main();
