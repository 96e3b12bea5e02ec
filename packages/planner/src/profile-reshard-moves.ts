import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fitLink, measureP2pLink } from '@seesaw/coordinator';
import type { LinkProfile } from './hardware.ts';

/**
 * How fast weight pieces move during a re-shard, by the engine's own paths: `weightSlice`
 * pieces in shared memory posted over a worker port and copied by the receiving thread, as a
 * device sends a piece to a peer (the coordinator's probe, which the `auto` route plans with
 * too); and reads of a file in the page cache into a buffer, as a device reads a `host` piece
 * from the checkpoint. Each is fitted as latency + bytes / rate from a small and a large piece
 * size.
 */
export function measurePeerWeightMoves(quick: boolean): Promise<LinkProfile> {
  return measureP2pLink({ numBytes: quick ? 4 << 20 : 16 << 20, numRepeats: quick ? 2 : 3 });
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
