/**
 * The two weight routes' rates on this host, measured the way re-shards use them, so the `auto`
 * route plans with this machine's figures rather than defaults (and `seesaw profile` measures
 * the same way): p2p = u8 weightSlice pieces in shared memory posted through a
 * WorkerPortEndpoint to another thread, which copies each into memory it has touched before and
 * answers (a descriptor's trip + the receiver's copy + the receipt, as a piece of the weight
 * arena pays between device threads); host =
 * positional Checkpoint reads of the largest tensors (page cache warm after the first read, as the
 * host route assumes), or with a host weight cache a copy out of shared memory.
 */
import { Checkpoint, type ReshardLinkRates } from '@seesaw/model';
import { SharedRegion, spawnWorkerEndpoint } from '@seesaw/protocol';

export interface LinkRateOptions {
  /** Bytes moved per timed transfer (default 16 MiB). */
  numBytes?: number;
  /** Timed transfers after one warm-up; the median counts (default 3). */
  numRepeats?: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
}

async function timedMedianMs(numRepeats: number, run: () => Promise<void> | void): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < numRepeats; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** A link as latency + bytes / rate (the planner's LinkProfile has the same shape). */
export interface MeasuredLink {
  bytesPerSecond: number;
  latencySeconds: number;
}

/** latency + bytes / rate through two measured points (small, large). */
export function fitLink(
  smallBytes: number,
  smallSeconds: number,
  largeBytes: number,
  largeSeconds: number,
): MeasuredLink {
  const slope = (largeSeconds - smallSeconds) / (largeBytes - smallBytes);
  const bytesPerSecond = slope > 0 ? 1 / slope : largeBytes / largeSeconds;
  return { bytesPerSecond, latencySeconds: Math.max(0, smallSeconds - smallBytes / bytesPerSecond) };
}

/**
 * The peer route: weight pieces in a SharedArrayBuffer (as the weight arena's are) posted to
 * another thread through a WorkerPortEndpoint as region descriptors, each copied there and
 * answered, fitted as latency + bytes / rate from 4 KiB pieces and numBytes pieces (posted back
 * to back, as the re-shard executor posts a unit's pieces).
 */
export async function measureP2pLink(options: LinkRateOptions = {}): Promise<MeasuredLink> {
  const numBytes = options.numBytes ?? 16 << 20;
  const numRepeats = options.numRepeats ?? 3;
  const sink = new URL('./reshard-link-sink.ts', import.meta.url);
  const { worker, endpoint } = spawnWorkerEndpoint(sink, { name: 'reshard link probe', log: () => {} });
  const pending: Array<() => void> = [];
  endpoint.onMessage(() => pending.shift()?.());
  const piece = { tag: 'weightSlice', reshardId: 1, name: 'probe', axis: 'rows', start: 0, end: 1 } as const;
  const memory = new SharedRegion(1, new SharedArrayBuffer(numBytes));
  endpoint.shareRegion(memory);
  const sendOne = (data: Uint8Array): Promise<void> =>
    new Promise((resolve) => {
      pending.push(resolve);
      endpoint.post(piece, [{ dtype: 'u8', shape: [data.length], data }]);
    });
  /** Median seconds per piece of `count` pieces of `size` bytes, after one warm-up piece. */
  const secondsPerPiece = async (size: number, count: number): Promise<number> => {
    const data = new Uint8Array(memory.buffer, 0, size).fill(1);
    await sendOne(data);
    const times: number[] = [];
    for (let r = 0; r < numRepeats; r++) {
      const start = performance.now();
      await Promise.all(Array.from({ length: count }, () => sendOne(data)));
      times.push((performance.now() - start) / 1000 / count);
    }
    return median(times);
  };
  try {
    const small = await secondsPerPiece(4096, 20);
    return fitLink(4096, small, numBytes, await secondsPerPiece(numBytes, 2));
  } finally {
    endpoint.close();
    await worker.terminate();
  }
}

/** Bytes/s of positional reads of the checkpoint's largest tensors, numBytes in all at most. */
export async function measureHostBytesPerSecond(
  modelDir: string,
  options: LinkRateOptions = {},
): Promise<number> {
  const numBytes = options.numBytes ?? 16 << 20;
  const checkpoint = Checkpoint.open(modelDir);
  try {
    const sizeOf = (name: string) => checkpoint.info(name).byteLength;
    const reads: Array<{ name: string; bytes: number }> = [];
    let total = 0;
    for (const name of checkpoint.names().sort((a, b) => sizeOf(b) - sizeOf(a))) {
      const bytes = Math.min(sizeOf(name), numBytes - total);
      if (bytes > 0) reads.push({ name, bytes });
      total += bytes;
    }
    const dest = new Uint8Array(numBytes);
    const ms = await timedMedianMs(options.numRepeats ?? 3, () => {
      for (const { name, bytes } of reads) checkpoint.readBytes(name, dest, 0, bytes);
    });
    return total / (ms / 1000);
  } finally {
    checkpoint.close();
  }
}

/**
 * Bytes/s of the host route with a host weight cache: numBytes copied out of a SharedArrayBuffer
 * (the cache) into memory the copy has touched before. That is the link; the first touch of the
 * new weights' pages is the device's allocation, measured apart (measureFreshPageCopyBytesPerSecond).
 */
export async function measureHostMemcpyBytesPerSecond(options: LinkRateOptions = {}): Promise<number> {
  const numBytes = options.numBytes ?? 16 << 20;
  const cache = new Uint8Array(new SharedArrayBuffer(numBytes)).fill(1);
  const dest = new Uint8Array(numBytes);
  const ms = await timedMedianMs(options.numRepeats ?? 3, () => dest.set(cache));
  return numBytes / (ms / 1000);
}

/**
 * Bytes/s of the same copy into a freshly allocated buffer each time: what a device pays to
 * fill memory it has never touched (page faults and zeroing), whichever route brings the bytes.
 */
export async function measureFreshPageCopyBytesPerSecond(options: LinkRateOptions = {}): Promise<number> {
  const numBytes = options.numBytes ?? 16 << 20;
  const cache = new Uint8Array(new SharedArrayBuffer(numBytes)).fill(1);
  const ms = await timedMedianMs(options.numRepeats ?? 3, () => {
    new Uint8Array(numBytes).set(cache);
  });
  return numBytes / (ms / 1000);
}

/**
 * Both routes' rates, measured one after the other. With `hostWeightCache` (a Seesaw run's
 * default) the host route is a memory copy out of the cache, else a checkpoint read.
 */
export async function measureReshardLinkRates(
  modelDir: string,
  options: LinkRateOptions & { hostWeightCache?: boolean } = {},
): Promise<ReshardLinkRates> {
  const p2p = await measureP2pLink(options);
  return {
    p2pBytesPerSecond: p2p.bytesPerSecond,
    p2pLatencySeconds: p2p.latencySeconds,
    hostBytesPerSecond: options.hostWeightCache
      ? await measureHostMemcpyBytesPerSecond(options)
      : await measureHostBytesPerSecond(modelDir, options),
  };
}
