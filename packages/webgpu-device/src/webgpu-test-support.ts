// Test support for the WebGPU backend (imported only by tests): the shared device, or the
// printed reason the GPU tests skip, and seeded random data.
import { f32ToBf16, f32ToF16, type Weight, type WeightDType } from '@seesaw/kernels';
import { type GpuContext, openGpu } from './gpu-context.ts';

/** The device for this test file, or null after printing why the GPU tests are skipped. */
export async function gpuForTests(): Promise<GpuContext | null> {
  const opened = await openGpu();
  if (opened.ok) return opened.context;
  console.log(`skipping WebGPU tests: ${opened.reason}`);
  return null;
}

export function testSeed(): number {
  const fromEnv = process.env.SEESAW_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`webgpu test seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
  return seed;
}

/** mulberry32. */
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
  return Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
}

export function randomWeight(rng: () => number, dtype: WeightDType, rows: number, cols: number): Weight {
  const values = randomF32(rng, rows * cols);
  if (dtype === 'f32') return { dtype, rows, cols, data: values };
  const data = new Uint16Array(rows * cols);
  (dtype === 'bf16' ? f32ToBf16 : f32ToF16)(values, data);
  return { dtype, rows, cols, data };
}

/** max|actual - ref| / max|ref|; NaN in actual fails. */
export function relativeError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (actual.length !== ref.length) throw new Error(`length ${actual.length} vs ${ref.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d;
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}
