/**
 * Re-shard route benchmark: a phased LocalCluster (real device workers) switching prefill <->
 * decode layouts by each weight route, with the host weight cache on (and, for the host route,
 * off), against the time its links imply at the rates measured in the same run (or --p2p-gbps /
 * --host-gbps, 1e9 B/s), which 'auto' also plans with. The p2p link is probed with pieces of the
 * p2p plans' byte-weighted median piece size (a 64 MiB probe frame always lands in fresh pages,
 * the route's few-MiB frames mostly in memory the allocator reuses: the probe must pay the same).
 *   pnpm bench:reshard [modelDir] [--devices 2|4] [--rounds N] [--routes p2p,host,auto] [--json]
 *     [--p2p-gbps X] [--host-gbps Y]
 * No modelDir: the `small` bf16 model, generated into a temporary directory. Links: p2p = a 64 MiB
 * u8 weightSlice posted through a WorkerPortEndpoint to another thread, to its ack (the encode copy
 * + transfer a piece pays); host with the cache = 64 MiB copied out of a SharedArrayBuffer; host
 * without = 64 MiB of the largest tensors by Checkpoint.readBytes (page cache warm, as the host
 * route assumes). "switch ms" is the coordinator's (barrier included), "device ms" the slowest
 * device's ReshardDone.ms; "link ms" = p2p bytes / p2p rate + host bytes / host rate (the busiest
 * link's bytes are not split per device: the replica's total, as if the devices shared one link);
 * "x dev link" = switch ms / the busiest device's own bytes at those rates (as if each device had
 * its own link, as GPUs each have their PCIe lanes: the stricter figure); "x link" =
 * switch ms / link ms (median of the timed rounds, which follow one untimed warm-up round trip:
 * its first switch in each direction is "cold ms", where a device's weight arena grows to the
 * switch's peak and the host weight cache may be filled). "fresh ms" = bytes moved / the rate of
 * copying into never-touched memory: what a device would pay to first-touch the pages of new
 * weight matrices. Then per row, the slowest device's time by phase (reshardDone), and the
 * weight-arena requests that took fresh memory in the timed rounds. "faulted MiB" = the minor page
 * faults of this process (the device workers are its threads) during a switch x 4 KiB, median:
 * memory touched for the first time, which a switch into its weight arena should barely need.
 * "best ms" / "best x" = the fastest timed round, less swayed by other load on a shared machine.
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
  measureFreshPageCopyBytesPerSecond,
  measureHostBytesPerSecond,
  measureHostMemcpyBytesPerSecond,
  measureP2pLink,
  type ReplicaReshardStats,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import {
  Checkpoint,
  dtypeByteSize,
  formatParallelConfig,
  generateCheckpoint,
  parseParallelConfig,
  type ReshardLinkRates,
  type ReshardRoute,
  shardSpec,
  shardTensorSlices,
  type TensorSlice,
} from '@seesaw/model';
import { type DirectionRow, type MeasuredRates, PHASES, printTable } from './reshard-bench-table.ts';

const LINK_BYTES = 64 << 20;
const LINK_REPEATS = 5;
/** Each route, and whether devices keep a host weight cache. */
const VARIANTS: ReadonlyArray<{ route: ReshardRoute; hostWeightCache: boolean }> = [
  { route: 'p2p', hostWeightCache: true },
  { route: 'host', hostWeightCache: true },
  { route: 'host', hostWeightCache: false },
  { route: 'auto', hostWeightCache: true },
];
/** Each device's budget: the whole checkpoint (more than a device holds mid-switch) plus this KV. */
const KV_CACHE_BYTES = 64 << 20;
const PREFILL_DECODE_PAIRS: Record<string, string[]> = {
  '2': ['P2 <-> T2'],
  '4': ['P4 <-> T4', 'P4 <-> T2P2'],
};

const PAGE_BYTES = 4096;

/** Byte-weighted median size of the pieces the p2p plans of `pairs` move (both directions). */
function p2pPieceBytes(modelDir: string, pairs: string[]): number {
  const config = Checkpoint.open(modelDir);
  let sizes: number[];
  try {
    const planner = createReshardPlanner(config.config, checkpointTensorBytes(modelDir), { route: 'p2p' });
    sizes = pairs.flatMap((pair) => {
      const [a, b] = pair.split(' <-> ').map(parseParallelConfig);
      return [planner(a!, b!), planner(b!, a!)].flatMap((plan) =>
        plan.devices.flatMap((device) =>
          device.pieces.filter((piece) => piece.source.kind === 'peer').map((piece) => piece.bytes),
        ),
      );
    });
  } finally {
    config.close();
  }
  sizes.sort((x, y) => x - y);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  let seen = 0;
  for (const size of sizes) {
    seen += size;
    if (seen >= total / 2) return size;
  }
  return LINK_BYTES;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
}

/** One cluster: a warm-up round trip, then `rounds` timed ones; a row per direction. */
async function benchRoute(
  modelDir: string,
  [prefill, decode]: string[],
  { route, hostWeightCache }: { route: ReshardRoute; hostWeightCache: boolean },
  rates: ReshardLinkRates,
  freshPageBytesPerSecond: number,
  rounds: number,
): Promise<DirectionRow[]> {
  const cluster = await LocalCluster.start({
    hostWeightCache,
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
      const isQuiet =
        line.includes('accepted') || line.startsWith('reshard') || line.includes('host weight cache');
      if (!isQuiet) process.stderr.write(`${line}\n`);
    },
  });
  try {
    const [replica] = cluster.phasedReplicas;
    const cold = [await replica.switchTo('decode'), await replica.switchTo('prefill')];
    const [toDecode, toPrefill]: ReplicaReshardStats[][] = [[], []];
    const faults: number[][] = [[], []];
    const timedSwitch = async (phase: 'decode' | 'prefill', index: number) => {
      const before = process.resourceUsage().minorPageFault;
      const stats = await replica.switchTo(phase);
      faults[index]!.push((process.resourceUsage().minorPageFault - before) * PAGE_BYTES);
      return stats;
    };
    for (let i = 0; i < rounds; i++) {
      toDecode.push(await timedSwitch('decode', 0));
      toPrefill.push(await timedSwitch('prefill', 1));
    }
    const planner = createReshardPlanner(cluster.config, checkpointTensorBytes(modelDir), {
      route,
      rates,
      isHeldReloaded: hostWeightCache,
    });
    return [toDecode, toPrefill].map((runs, coldIndex) => {
      const { from, to, bytesFromPeers, bytesFromHost, bytesMoved } = runs[0];
      const direction = `${formatParallelConfig(from)}->${formatParallelConfig(to)}`;
      const plan = planner(from, to);
      if (plan.bytesMoved !== bytesMoved) throw new Error(`${route} ${direction}: moved != planned bytes`);
      const switchMs = runs.map((run) => run.ms);
      const medianMs = median(switchMs);
      const linkSeconds = bytesFromPeers / rates.p2pBytesPerSecond + bytesFromHost / rates.hostBytesPerSecond;
      const deviceLinkSeconds = Math.max(
        ...runs[0].devices.map(
          (done) =>
            done.bytesReceived / rates.p2pBytesPerSecond + done.bytesFromHost / rates.hostBytesPerSecond,
        ),
      );
      const slowest = runs.map((run) => run.devices.reduce((a, b) => (b.ms > a.ms ? b : a)));
      const phaseMs = Object.fromEntries(
        PHASES.map((phase) => [phase, median(slowest.map((done) => done[phase] ?? 0))]),
      ) as DirectionRow['phaseMs'];
      const arenaFallbacks = runs
        .flatMap((run) => run.devices)
        .reduce((sum, done) => sum + (done.arenaFallbacks ?? 0), 0);
      return {
        route,
        hostWeightCache,
        direction,
        bytesFromPeers,
        bytesFromHost,
        switchMs,
        medianMs,
        coldMs: cold[coldIndex]!.ms,
        phaseMs,
        arenaFallbacks,
        faultedBytes: median(faults[coldIndex]!),
        deviceMs: median(runs.map((run) => Math.max(...run.devices.map((device) => device.ms)))),
        effectiveGBps: bytesMoved / (medianMs / 1000) / 1e9,
        modelledSeconds: plan.seconds,
        linkMs: linkSeconds * 1000,
        deviceLinkMs: deviceLinkSeconds * 1000,
        freshMs: (bytesMoved / freshPageBytesPerSecond) * 1000,
      };
    });
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}

/**
 * Host memory the weight cache takes over all devices: each device's shard under each layout,
 * its raw checkpoint bytes (an upper bound: a slice a device holds under both layouts is kept once).
 */
function hostWeightCacheBytes(modelDir: string, layouts: string[]): number {
  const checkpoint = Checkpoint.open(modelDir);
  try {
    const config = checkpoint.config;
    let total = 0;
    for (const layout of layouts) {
      const { tp, pp } = parseParallelConfig(layout);
      for (let ppStage = 0; ppStage < pp; ppStage++) {
        for (let tpRank = 0; tpRank < tp; tpRank++) {
          const spec = shardSpec(config, { tp, tpRank, pp, ppStage });
          const slices = shardTensorSlices(spec);
          const unique = slices.filter(
            (slice, i) => slices.findIndex((other) => sameSlice(other, slice)) === i,
          );
          for (const slice of unique) {
            const { shape, dtype } = checkpoint.info(slice.name);
            const extent = slice.end - slice.start;
            // A 1-D slice is its elements; a 2-D one its rows x all columns, or all rows x its columns.
            const across = shape.length === 1 ? 1 : slice.axis === 'rows' ? shape[1]! : shape[0]!;
            total += extent * across * dtypeByteSize(dtype);
          }
        }
      }
    }
    return total;
  } finally {
    checkpoint.close();
  }
}

function sameSlice(a: TensorSlice, b: TensorSlice): boolean {
  return a.name === b.name && a.axis === b.axis && a.start === b.start && a.end === b.end;
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
      routes: { type: 'string', default: 'p2p,host,auto' },
      json: { type: 'boolean', default: false },
      'p2p-gbps': { type: 'string' },
      'host-gbps': { type: 'string' },
    },
  });
  const pairs = PREFILL_DECODE_PAIRS[values.devices];
  if (!pairs) throw new Error(`--devices must be 2 or 4, got ${values.devices}`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const routes = values.routes.split(',');
  const unknownRoute = routes.find((route) => !VARIANTS.some((variant) => variant.route === route));
  if (unknownRoute !== undefined) throw new Error(`--routes lists p2p, host or auto, got "${unknownRoute}"`);
  const variants = VARIANTS.filter((variant) => routes.includes(variant.route));
  const tempDir = positionals[0] ? undefined : mkdtempSync(join(tmpdir(), 'seesaw-reshard-bench-'));
  const modelDir = positionals[0] ?? (tempDir as string);
  try {
    if (tempDir) {
      process.stderr.write(`generating the small bf16 model in ${tempDir}\n`);
      await generateCheckpoint({ shape: 'small', seed: 0, dtype: 'bf16', outDir: tempDir });
    }
    const linkOptions = { numBytes: LINK_BYTES, numRepeats: LINK_REPEATS };
    const pieceBytes = p2pPieceBytes(modelDir, pairs);
    process.stderr.write(`p2p link probed with ${formatBytes(pieceBytes)} pieces\n`);
    const measured: MeasuredRates = {
      p2pBytesPerSecond: (await measureP2pLink({ numBytes: pieceBytes, numRepeats: LINK_REPEATS }))
        .bytesPerSecond,
      hostReadBytesPerSecond: await measureHostBytesPerSecond(modelDir, linkOptions),
      hostMemcpyBytesPerSecond: await measureHostMemcpyBytesPerSecond(linkOptions),
      freshPageBytesPerSecond: await measureFreshPageCopyBytesPerSecond(linkOptions),
    };
    const ratesOf = (hostWeightCache: boolean): ReshardLinkRates => ({
      p2pBytesPerSecond: gbpsFlag(values['p2p-gbps']) ?? measured.p2pBytesPerSecond,
      hostBytesPerSecond:
        gbpsFlag(values['host-gbps']) ??
        (hostWeightCache ? measured.hostMemcpyBytesPerSecond : measured.hostReadBytesPerSecond),
    });
    const rows: Array<DirectionRow & { pair: string }> = [];
    for (const pair of pairs) {
      for (const variant of variants) {
        const cache = variant.hostWeightCache ? 'on' : 'off';
        process.stderr.write(
          `${pair} by ${variant.route}, host weight cache ${cache}: 1 warm-up (cold) + ${rounds} round trips\n`,
        );
        const rates = ratesOf(variant.hostWeightCache);
        const fresh = measured.freshPageBytesPerSecond;
        const directions = await benchRoute(modelDir, pair.split(' <-> '), variant, rates, fresh, rounds);
        rows.push(...directions.map((row) => ({ pair, ...row })));
      }
    }
    const modelBytes = Checkpoint.tensorBytesOf(modelDir);
    if (values.json) {
      console.log(JSON.stringify({ modelDir, modelBytes, rounds, measured, rows }, null, 2));
      return;
    }
    console.log(`model ${tempDir ? 'small bf16' : modelDir}: ${formatBytes(modelBytes)} of weights`);
    for (const pair of pairs) {
      const cacheBytes = hostWeightCacheBytes(modelDir, pair.split(' <-> '));
      console.log(
        `host weight cache (${pair}, all devices, both layouts): ${formatBytes(cacheBytes)} of host memory`,
      );
    }
    printTable(rows, measured);
  } finally {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

await main();
