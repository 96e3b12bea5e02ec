// Helpers shared by the kernel tests: a seeded random source (seed varies per run and is
// printed so a failure can be replayed with SEESAW_TEST_SEED) and error measures.
import { f32ToBf16, f32ToF16, type Weight, type WeightDType } from '../src/index.ts';

export function testSeed(): number {
  const fromEnv = process.env.SEESAW_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`kernel test seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
  return seed;
}

/** mulberry32: small, fast, good enough for test data. */
export function makeRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomF32(rng: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}

/** A random weight of the given dtype (values in [-scale, scale], rounded to the dtype). */
export function randomWeight(
  rng: () => number,
  dtype: WeightDType,
  rows: number,
  cols: number,
  scale = 1,
): Weight {
  const values = randomF32(rng, rows * cols, scale);
  if (dtype === 'f32') return { dtype, rows, cols, data: values };
  const data = new Uint16Array(rows * cols);
  (dtype === 'bf16' ? f32ToBf16 : f32ToF16)(values, data);
  return { dtype, rows, cols, data };
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** max|a - b| / max|ref| (0 when both are all zero). */
export function relativeError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (actual.length !== ref.length) throw new Error(`length ${actual.length} vs ${ref.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d; // NaN propagates as a failure
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** max|a - b| / max(magnitude): the error against the size of what was summed (for sums that
 *  can cancel, e.g. magnitude = the same product on absolute values). */
export function errorAgainstMagnitude(
  actual: ArrayLike<number>,
  ref: ArrayLike<number>,
  magnitude: ArrayLike<number>,
): number {
  if (actual.length !== ref.length) throw new Error(`length ${actual.length} vs ${ref.length}`);
  let maxDiff = 0;
  let maxMagnitude = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d;
    maxMagnitude = Math.max(maxMagnitude, Math.abs(magnitude[i]));
  }
  return maxMagnitude === 0 ? maxDiff : maxDiff / maxMagnitude;
}
