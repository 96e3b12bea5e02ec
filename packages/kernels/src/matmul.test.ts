import { afterEach, describe, expect, it } from 'vitest';
import {
  errorAgainstMagnitude,
  makeRng,
  randomF32,
  randomWeight,
  testSeed,
  toF64,
} from '../test/test-support.ts';
import { matmul, reference, setNumThreads, type WeightDType, weightToFloat64 } from './index.ts';

const rng = makeRng(testSeed());
const dtypes: WeightDType[] = ['f32', 'bf16', 'f16'];

afterEach(() => setNumThreads(1));

// f32 accumulation over K products of exact inputs: the error is a few 2^-24 times the sum of
// |terms|; measured against max_j sum_k |x_k w_jk| (which a cancelling sum cannot make small)
// the worst seen over thousands of random cases is 1.2e-7, so 1e-6 leaves 8x margin while a
// 1e-4 relative slip in any partial sum still fails. 16-bit weights are compared against the
// reference of the same rounded weights, so the bound is the same.
const bound = 1e-6;

function magnitude(x: Float32Array, m: number, w: Float64Array, n: number, k: number, bias?: Float32Array) {
  const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);
  return reference.matmul(abs(x), m, abs(w), n, k, bias ? abs(bias) : undefined);
}

function check(m: number, n: number, k: number, dtype: WeightDType, withBias: boolean): void {
  const w = randomWeight(rng, dtype, n, k);
  const x = randomF32(rng, m * k);
  const bias = withBias ? randomF32(rng, n) : undefined;
  const out = new Float32Array(m * n).fill(Number.NaN);
  matmul(out, x, m, w, bias);
  const w64 = weightToFloat64(w);
  const ref = reference.matmul(toF64(x), m, w64, n, k, bias ? toF64(bias) : undefined);
  expect(errorAgainstMagnitude(out, ref, magnitude(x, m, w64, n, k, bias))).toBeLessThan(bound);
}

describe('matmul against the float64 reference', () => {
  for (const threads of [1, 2]) {
    for (const dtype of dtypes) {
      it(`1-9 and 33 rows (narrow and 4x3 tiles), ${dtype}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        for (const m of [1, 2, 3, 4, 5, 7, 8, 9, 33]) {
          check(m, 1 + Math.floor(rng() * 40) * 2, 257, dtype, m % 2 === 1);
          check(m, 67, 1000, dtype, false);
          check(m, 3, 5, dtype, true);
        }
      });
      it(`33-40 rows, long K, ${dtype}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        // Rows x K past the old streaming threshold (320 KiB of activations).
        check(40, 37, 2500, dtype, true);
        check(33, 50, 2600, dtype, false);
      });
      it(`48+ rows, N and K off every tile width, ${dtype}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        // >= 48 rows; N not a multiple of the 16-wide panel or the 96-wide task, K not of 8.
        check(48, 16, 64, dtype, false);
        check(97, 53, 1000, dtype, true);
        check(130, 211, 1031, dtype, false);
        check(61, 7, 3, dtype, true);
      });
    }
  }

  it('m = 0 leaves out untouched; K = 0 gives the bias', () => {
    const w = randomWeight(rng, 'f32', 5, 0);
    const out = new Float32Array(10).fill(7);
    matmul(out, new Float32Array(0), 0, w);
    expect(Array.from(out)).toEqual(new Array(10).fill(7));
    const bias = randomF32(rng, 5);
    matmul(out, new Float32Array(0), 2, w, bias);
    expect(Array.from(out)).toEqual([...bias, ...bias]);
  });

  it('works on subarray views with byte offsets', () => {
    const k = 19;
    const n = 11;
    const w = randomWeight(rng, 'bf16', n, k);
    const big = randomF32(rng, 3 * k + 5);
    const x = big.subarray(5);
    const outBig = new Float32Array(3 * n + 3);
    const out = outBig.subarray(3);
    matmul(out, x, 3, w);
    const w64 = weightToFloat64(w);
    const ref = reference.matmul(toF64(x), 3, w64, n, k);
    expect(errorAgainstMagnitude(out, ref, magnitude(x, 3, w64, n, k))).toBeLessThan(bound);
    expect(Array.from(outBig.subarray(0, 3))).toEqual([0, 0, 0]);
  });
});
