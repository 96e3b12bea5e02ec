import { fitLink } from '@seesaw/coordinator';
import type { LinkProfile } from './hardware.ts';
import { median } from './profile-inputs.ts';

/**
 * The two parts of a re-shard that stay on the device, as `seesaw profile` measures them:
 * assembling the new shard's tensors from the pieces kept, received or read (each fused tensor is
 * a fresh 16-bit array the pieces are copied into; model-weights.ts), and allocating the new KV
 * cache (a K and a V f32 array per layer; paged-kv-cache.ts). Each is fitted as
 * fixed cost + bytes / rate from a small and a large size.
 */
export interface ReshardLocalParts {
  weightAssembly: LinkProfile;
  kvAllocation: LinkProfile;
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

/** A KV cache of `bytes` over 2 x `numLayers` f32 arrays, as the CPU device allocates it. */
function allocateKvSeconds(bytes: number, numLayers: number, reps: number): number {
  const floatsPerArray = bytes / 4 / (2 * numLayers);
  let sink = 0;
  const seconds = medianSeconds(reps, () => {
    const arrays = Array.from({ length: 2 * numLayers }, () => new Float32Array(floatsPerArray));
    sink += arrays.length;
  });
  if (sink < 0) throw new Error('unreachable');
  return seconds;
}

export function measureReshardLocalParts(quick: boolean): ReshardLocalParts {
  const [small, large] = [64 * 1024, quick ? 16 * 1024 ** 2 : 64 * 1024 ** 2];
  const source = new Uint16Array(large / 2).fill(3);
  const reps = quick ? 3 : 7;
  const weightAssembly = fitLink(
    small,
    assembleSeconds(source, small, 20),
    large,
    assembleSeconds(source, large, reps),
  );
  const numLayers = 12;
  const kvAllocation = fitLink(
    small * numLayers,
    allocateKvSeconds(small * numLayers, numLayers, 20),
    large * 2,
    allocateKvSeconds(large * 2, numLayers, reps),
  );
  return { weightAssembly, kvAllocation };
}
