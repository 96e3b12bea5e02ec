/**
 * The two weight routes' rates on this host, measured the way re-shards use them, so the `auto`
 * route plans with this machine's figures rather than defaults: p2p = one u8 weightSlice piece
 * posted through a WorkerPortEndpoint to another thread, to its acknowledgement (the frame
 * encode copy + transfer a piece pays); host = positional Checkpoint reads of the largest
 * tensors (page cache warm after the first read, as the host route assumes).
 */
import { Checkpoint, type ReshardLinkRates } from '@seesaw/model';
import { spawnWorkerEndpoint } from '@seesaw/protocol';

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

/** Bytes/s of one weight piece posted to another thread and acknowledged. */
export async function measureP2pBytesPerSecond(options: LinkRateOptions = {}): Promise<number> {
  const numBytes = options.numBytes ?? 16 << 20;
  const sink = new URL('./reshard-link-sink.ts', import.meta.url);
  const { worker, endpoint } = spawnWorkerEndpoint(sink, { name: 'reshard link probe', log: () => {} });
  try {
    const data = new Uint8Array(numBytes);
    let acked = () => {};
    endpoint.onMessage(() => acked());
    const piece = {
      tag: 'weightSlice',
      reshardId: 1,
      name: 'probe',
      axis: 'rows',
      start: 0,
      end: 1,
    } as const;
    const ms = await timedMedianMs(options.numRepeats ?? 3, () => {
      const arrived = new Promise<void>((resolve) => {
        acked = resolve;
      });
      endpoint.post(piece, [{ dtype: 'u8', shape: [numBytes], data }]);
      return arrived;
    });
    return numBytes / (ms / 1000);
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

/** Both routes' rates, measured one after the other. */
export async function measureReshardLinkRates(
  modelDir: string,
  options: LinkRateOptions = {},
): Promise<ReshardLinkRates> {
  return {
    p2pBytesPerSecond: await measureP2pBytesPerSecond(options),
    hostBytesPerSecond: await measureHostBytesPerSecond(modelDir, options),
  };
}
