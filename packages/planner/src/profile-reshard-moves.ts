import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnWorkerEndpoint, type WeightSlice } from '@seesaw/protocol';
import type { LinkProfile } from './hardware.ts';

/**
 * How fast weight pieces move during a re-shard, by the engine's own paths: framed
 * `weightSlice` messages (u8 tensors) over a worker port, as a device sends a piece to a peer,
 * answered once decoded; and reads of a file in the page cache into a buffer, as a device
 * reads a `host` piece from the checkpoint. Each is fitted as latency + bytes / rate from a
 * small and a large piece size.
 */
export async function measurePeerWeightMoves(quick: boolean): Promise<LinkProfile> {
  const { worker, endpoint } = spawnWorkerEndpoint(new URL('./profile-transport-worker.ts', import.meta.url));
  const pending: Array<() => void> = [];
  endpoint.onMessage(() => pending.shift()?.());
  const sendOne = (bytes: Uint8Array): Promise<void> =>
    new Promise((resolve) => {
      pending.push(resolve);
      const message: WeightSlice = {
        tag: 'weightSlice',
        reshardId: 1,
        name: 'x',
        axis: 'rows',
        start: 0,
        end: 1,
      };
      endpoint.post(message, [{ dtype: 'u8', shape: [1, bytes.length], data: bytes }]);
    });
  const timeMoves = async (size: number, count: number): Promise<number> => {
    const piece = new Uint8Array(size).fill(7);
    await sendOne(piece);
    const start = performance.now();
    // Pieces of one unit are posted back to back, as the executor does; then all are awaited.
    await Promise.all(Array.from({ length: count }, () => sendOne(piece)));
    return (performance.now() - start) / 1000 / count;
  };
  try {
    const small = await timeMoves(4096, quick ? 20 : 50);
    const largeBytes = quick ? 4 * 1024 ** 2 : 16 * 1024 ** 2;
    const large = await timeMoves(largeBytes, quick ? 4 : 8);
    return fitLink(4096, small, largeBytes, large);
  } finally {
    endpoint.close();
    await worker.terminate();
  }
}

export function measureHostWeightReads(quick: boolean): LinkProfile {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-profile-'));
  const path = join(dir, 'weights.bin');
  const fileBytes = quick ? 16 * 1024 ** 2 : 64 * 1024 ** 2;
  try {
    writeFileSync(path, new Uint8Array(fileBytes).fill(3));
    const fd = openSync(path, 'r');
    try {
      const read = (size: number, reps: number): number => {
        const dest = new Uint8Array(size);
        const times: number[] = [];
        for (let r = 0; r <= reps; r++) {
          const start = performance.now();
          let done = 0;
          while (done < size) done += readSync(fd, dest, done, size - done, done);
          if (r > 0) times.push((performance.now() - start) / 1000);
        }
        times.sort((a, b) => a - b);
        return times[Math.floor(times.length / 2)];
      };
      return fitLink(4096, read(4096, 30), fileBytes, read(fileBytes, 3));
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** latency + bytes / rate through two measured points. */
function fitLink(
  smallBytes: number,
  smallSeconds: number,
  largeBytes: number,
  largeSeconds: number,
): LinkProfile {
  const slope = (largeSeconds - smallSeconds) / (largeBytes - smallBytes);
  const bytesPerSecond = slope > 0 ? 1 / slope : largeBytes / largeSeconds;
  return { bytesPerSecond, latencySeconds: Math.max(0, smallSeconds - smallBytes / bytesPerSecond) };
}
