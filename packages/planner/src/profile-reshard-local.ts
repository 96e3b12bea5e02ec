import { fitLink } from '@seesaw/coordinator';
import type { LinkProfile } from './hardware.ts';
import { median } from './profile-inputs.ts';

/**
 * A re-shard's work on the device once its pieces are there, as `seesaw profile` measures it:
 * assembling the new shard's tensors from the pieces kept, received or read (each fused tensor
 * is a fresh 16-bit array the pieces are copied into; model-weights.ts), fitted as fixed cost +
 * bytes / rate from a small and a large tensor. The new KV cache is not charged: its f32 arrays
 * (paged-kv-cache.ts) are zero pages the OS maps on first touch, so allocating them costs next to
 * nothing at the switch (timing repeated allocations instead measures the collector freeing the
 * last ones: 0.3-3 GB/s here, which charged 16.8 s for a re-shard the engine did in 0.36 s).
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

function medianSeconds(reps: number, run: () => void): number {
  run();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    run();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

/** A 16-bit tensor of `bytes` assembled from 4 row-block pieces of an older buffer. */
function assembleSeconds(source: Uint16Array, bytes: number, reps: number): number {
  const elements = bytes / 2;
  const piece = elements / 4;
  let sink = 0;
  const seconds = medianSeconds(reps, () => {
    const tensor = new Uint16Array(elements);
    for (let p = 0; p < 4; p++) tensor.set(source.subarray(p * piece, (p + 1) * piece), p * piece);
    sink += tensor[elements - 1];
  });
  if (sink < 0) throw new Error('unreachable');
  return seconds;
}
