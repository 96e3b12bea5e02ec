import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, randomWeight, relativeError, testSeed, toF64 } from '../test/test-support.ts';
import {
  addInPlace,
  embed,
  reference,
  rmsNorm,
  rope,
  setNumThreads,
  siluMul,
  type WeightDType,
  weightToFloat64,
} from './index.ts';

const rng = makeRng(testSeed());
afterEach(() => setNumThreads(1));

// Shapes: small ones run serially, large ones (>= 32K elements) are split over the pool.
const shapes: Array<[rows: number, cols: number]> = [
  [1, 7],
  [3, 257],
  [33, 1000],
  [70, 4099],
];

describe('row-wise kernels against the float64 reference', () => {
  for (const threads of [1, 2]) {
    it(`rmsNorm, separate and aliased output, ${threads} thread(s)`, () => {
      setNumThreads(threads);
      for (const [rows, cols] of shapes) {
        const x = randomF32(rng, rows * cols, 3);
        const weight = randomF32(rng, cols);
        const ref = reference.rmsNorm(toF64(x), toF64(weight), 1e-5);
        const out = new Float32Array(rows * cols);
        rmsNorm(out, x, weight, 1e-5);
        // per element: a few f32 roundings of a value bounded by |x|*|w|*rsqrt
        expect(relativeError(out, ref)).toBeLessThan(1e-6);
        rmsNorm(x, x, weight, 1e-5);
        expect(relativeError(x, ref)).toBeLessThan(1e-6);
      }
    });

    it(`addInPlace, ${threads} thread(s)`, () => {
      setNumThreads(threads);
      for (const n of [0, 5, 1003, 100_001]) {
        const x = randomF32(rng, n);
        const y = randomF32(rng, n);
        const ref = reference.add(toF64(x), toF64(y));
        addInPlace(x, y);
        expect(relativeError(x, ref)).toBeLessThan(1e-7);
      }
    });

    it(`rope on a strided view (q part of a fused qkv row), ${threads} thread(s)`, () => {
      setNumThreads(threads);
      for (const [tokens, heads, headDim] of [
        [1, 8, 32],
        [5, 3, 6],
        [37, 16, 64],
        [200, 8, 128],
      ]) {
        const rowStride = heads * headDim + 2 * 4 * headDim + 3; // qkv-like padding after q
        const x = randomF32(rng, tokens * rowStride);
        const half = headDim / 2;
        const angles = Array.from({ length: tokens * half }, () => rng() * 100);
        const cos = Float32Array.from(angles, Math.cos);
        const sin = Float32Array.from(angles, Math.sin);
        const ref = reference.rope(toF64(x), tokens, heads, headDim, rowStride, toF64(cos), toF64(sin));
        rope(x, tokens, heads, headDim, rowStride, cos, sin);
        expect(relativeError(x, ref)).toBeLessThan(1e-6);
      }
    });

    it(`siluMul including large |gate|, ${threads} thread(s)`, () => {
      setNumThreads(threads);
      for (const [rows, inter] of shapes) {
        const gateUp = randomF32(rng, rows * 2 * inter, 8);
        gateUp[0] = -120;
        gateUp[1] = 95;
        const ref = reference.siluMul(toF64(gateUp), rows, inter);
        const out = new Float32Array(rows * inter);
        siluMul(out, gateUp, rows, inter);
        // vectorised exp is accurate to ~2e-7 relative; silu*up adds two f32 roundings
        expect(relativeError(out, ref)).toBeLessThan(2e-6);
      }
    });

    for (const dtype of ['f32', 'bf16', 'f16'] as WeightDType[]) {
      it(`embed ${dtype}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        for (const hidden of [13, 256, 1003]) {
          const vocab = 50;
          const table = randomWeight(rng, dtype, vocab, hidden);
          const ids = Int32Array.from({ length: 40 }, () => Math.floor(rng() * vocab));
          ids[0] = vocab - 1;
          ids[1] = 0;
          const out = new Float32Array(ids.length * hidden);
          embed(out, table, ids);
          // a 16-bit value widens exactly to f32
          expect(Array.from(out)).toEqual(Array.from(reference.embed(weightToFloat64(table), hidden, ids)));
        }
      });
    }
  }
});
