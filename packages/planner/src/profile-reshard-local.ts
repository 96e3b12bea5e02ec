import { fitLink } from '@seesaw/coordinator';
import type { LinkProfile } from './hardware.ts';
import { timeSeconds } from './profile-inputs.ts';

/**
 * A re-shard's work on the device once its pieces are there, as `seesaw profile` measures it:
 * assembling the new shard's tensors from the pieces kept, received or read, fitted as fixed
 * cost + bytes / rate from a small and a large tensor. The engine builds each new tensor in its
 * weight arena (gpu-actor weight-arena.ts): pages reserved and touched at load and freed by the
 * old shard, so the copy lands in touched memory and the timing reuses one destination. (Timed
 * into a fresh array per tensor, as before the arena, it measured this VM's first-touch rate,
 * 0.3 GB/s, and charged 0.4 s for the 142 MiB a P2->T2 device writes in 20-30 ms.) The new KV
 * cache is not charged: it re-views the worker's KV arena (kv-cache-arena.ts), no allocation.
 */
export function measureReshardWeightAssembly(quick: boolean): LinkProfile {
  const [small, large] = [64 * 1024, quick ? 16 * 1024 ** 2 : 64 * 1024 ** 2];
  const source = new Uint16Array(large / 2).fill(3);
  return fitLink(
    small,
    assembleSeconds(source, small, 20),
    large,
    assembleSeconds(source, large, quick ? 3 : 7),
  );
}

/** A 16-bit tensor of `bytes` assembled from 4 row-block pieces of an older buffer into touched memory. */
function assembleSeconds(source: Uint16Array, bytes: number, reps: number): number {
  const elements = bytes / 2;
  const piece = elements / 4;
  // Touched once here, as the weight arena's pages are at load.
  const tensor = new Uint16Array(elements).fill(1);
  return timeSeconds(() => {
    for (let p = 0; p < 4; p++) tensor.set(source.subarray(p * piece, (p + 1) * piece), p * piece);
  }, reps);
}
