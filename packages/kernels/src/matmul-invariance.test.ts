// The canonical reduction order of docs/determinism.md, checked on the bits: a row's matmul
// output must not depend on the rows around it, the row count (which picks the tile), the
// thread count, the instruction-set path, or on K being split into TP-rank ranges combined by
// the halving tree.
import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, randomWeight, testSeed } from '../test/test-support.ts';
import { matmul, matmulOnPath, matmulPaths, setNumThreads, type Weight, type WeightDType } from './index.ts';

const rng = makeRng(testSeed());
const dtypes: WeightDType[] = ['f32', 'bf16', 'f16'];

afterEach(() => setNumThreads(1));

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function rowAlone(x: Float32Array, w: Weight, bias?: Float32Array): Float32Array {
  const out = new Float32Array(w.rows);
  matmul(out, x, 1, w, bias);
  return out;
}

/** Columns [k0, k1) of w, as a weight of its own (a row-parallel TP rank's shard). */
function columnSlice(w: Weight, k0: number, k1: number, leaves: number): Weight {
  const cols = k1 - k0;
  const data = w.dtype === 'f32' ? new Float32Array(w.rows * cols) : new Uint16Array(w.rows * cols);
  for (let j = 0; j < w.rows; j++) data.set(w.data.subarray(j * w.cols + k0, j * w.cols + k1), j * cols);
  return { dtype: w.dtype, rows: w.rows, cols, data, leaves };
}

/** The halving tree over rank partials, each add rounded to f32. */
function halvingTree(parts: Float32Array[], lo = 0, hi = parts.length): Float32Array {
  if (hi - lo === 1) return parts[lo];
  const mid = lo + Math.floor((hi - lo) / 2);
  const a = halvingTree(parts, lo, mid);
  const b = halvingTree(parts, mid, hi);
  return a.map((v, i) => Math.fround(v + b[i]));
}

describe('matmul is batch-, tile- and thread-invariant (bit-equal)', () => {
  for (const dtype of dtypes) {
    it(`${dtype}: a row alone equals the same row among 0..63 random neighbours, 1 and 2 threads`, () => {
      // K: whole chunks, a short last chunk, a tail under 8; N: not a multiple of any tile width.
      for (const [n, k] of [
        [53, 256],
        [29, 1000],
        [17, 37],
      ]) {
        const w = randomWeight(rng, dtype, n, k);
        const bias = rng() < 0.5 ? randomF32(rng, n) : undefined;
        const x = randomF32(rng, k);
        setNumThreads(1);
        const alone = bits(rowAlone(x, w, bias));
        for (const threads of [1, 2]) {
          setNumThreads(threads);
          // Every row of the small batches (3- and 2-row edge tiles among them), then random sizes.
          const sizes = [2, 3, 5, 6, 7];
          for (let m = 1; m <= 64; m += 1 + Math.floor(rng() * 4)) sizes.push(m);
          for (const [m, at] of sizes.flatMap((m) =>
            m <= 7 ? Array.from({ length: m }, (_, at) => [m, at]) : [[m, Math.floor(rng() * m)]],
          )) {
            const batch = randomF32(rng, m * k, 1 + rng() * 10);
            batch.set(x, at * k);
            const out = new Float32Array(m * n);
            matmul(out, batch, m, w, bias);
            const row = bits(out.subarray(at * n, (at + 1) * n));
            expect(row, `n=${n} k=${k} m=${m} row ${at} threads ${threads}`).toEqual(alone);
          }
        }
      }
    });

    it(`${dtype}: K split over T = 2, 4, 8 ranks (8 / T leaves each) and combined by the halving tree equals T1 (8 leaves)`, () => {
      // down_proj-like K = 768 (leaves of 96) and o_proj-like K = 256 (leaves of 32), plus a
      // K whose leaves end in a scalar tail (8 x 13).
      for (const k of [768, 256, 104]) {
        const n = 41;
        const m = 1 + Math.floor(rng() * 20);
        const w = { ...randomWeight(rng, dtype, n, k), leaves: 8 };
        const x = randomF32(rng, m * k);
        const full = new Float32Array(m * n);
        matmul(full, x, m, w);
        for (const t of [2, 4, 8]) {
          const kr = k / t;
          const parts = Array.from({ length: t }, (_, r) => {
            const xs = new Float32Array(m * kr);
            for (let i = 0; i < m; i++) xs.set(x.subarray(i * k + r * kr, i * k + (r + 1) * kr), i * kr);
            const part = new Float32Array(m * n);
            matmul(part, xs, m, columnSlice(w, r * kr, (r + 1) * kr, 8 / t));
            return part;
          });
          expect(bits(halvingTree(parts)), `k=${k} m=${m} T${t}`).toEqual(bits(full));
        }
      }
    });

    it(`${dtype}: every instruction-set path this CPU runs gives the same bits`, () => {
      const { supported, chosen } = matmulPaths();
      expect(supported).toContain(chosen);
      for (const [m, n, k, leaves] of [
        [1, 37, 768, 1],
        [2, 19, 256, 8],
        [7, 70, 1000, 2],
        [33, 129, 250, 1],
        [5, 16, 13, 1],
        [6, 45, 300, 1],
        [3, 21, 96, 4],
      ]) {
        const w = { ...randomWeight(rng, dtype, n, k), leaves };
        const x = randomF32(rng, m * k);
        const bias = rng() < 0.5 ? randomF32(rng, n) : undefined;
        const reference = new Float32Array(m * n);
        matmul(reference, x, m, w, bias);
        for (const path of supported) {
          const out = new Float32Array(m * n);
          matmulOnPath(path, out, x, m, w, bias);
          expect(bits(out), `${path} m=${m} n=${n} k=${k} leaves=${leaves}`).toEqual(bits(reference));
        }
      }
    });
  }
});
