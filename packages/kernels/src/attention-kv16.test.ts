import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, relativeError, testSeed } from '../test/test-support.ts';
import {
  allocateKvCache,
  type KvCacheArray,
  type KvDType,
  type KvLayout,
  pagedAttention,
  reference,
  setNumThreads,
  writeKv,
} from './index.ts';

// 16-bit KV caches: writeKv rounds each value to nearest even, pagedAttention widens it exactly
// as it loads. So a 16-bit cache must give, bit for bit, what an f32 cache holding the rounded
// values gives (same kernel, same order), and stay within the rounding's bound of float64 on the
// unrounded values.

const rng = makeRng(testSeed());
afterEach(() => setNumThreads(1));

const toBits: Record<'bf16' | 'f16', (v: number) => number> = {
  bf16: reference.numberToBf16,
  f16: reference.numberToF16,
};
const fromBits: Record<'bf16' | 'f16', (b: number) => number> = {
  bf16: reference.bf16ToNumber,
  f16: reference.f16ToNumber,
};

interface Case {
  cacheK: Float32Array | Uint16Array;
  cacheV: Float32Array | Uint16Array;
  widenedK: Float32Array;
  widenedV: Float32Array;
  exactK: Float64Array;
  exactV: Float64Array;
}

/** Writes `contextLen` tokens of random K/V for each sequence (blocks in order) into a cache of
 *  `dtype`, checking every stored element against the reference rounding. */
function fillCaches(dtype: 'bf16' | 'f16', layout: KvLayout, contextLens: number[]) {
  const { numKvHeads, headDim, blockSize } = layout;
  const blocksPer = contextLens.map((c) => Math.ceil(c / blockSize));
  const numBlocks = blocksPer.reduce((a, b) => a + b, 0);
  const cacheLen = numBlocks * numKvHeads * blockSize * headDim;
  const maxBlocksPerSeq = Math.max(...blocksPer);
  const blockTables = new Int32Array(contextLens.length * maxBlocksPerSeq);
  const slots: number[] = [];
  let next = 0;
  contextLens.forEach((c, s) => {
    for (let b = 0; b < blocksPer[s]; b++) blockTables[s * maxBlocksPerSeq + b] = next + b;
    for (let p = 0; p < c; p++) slots.push((next + Math.floor(p / blockSize)) * blockSize + (p % blockSize));
    next += blocksPer[s];
  });
  const width = numKvHeads * headDim;
  const k = randomF32(rng, slots.length * width, 3);
  const v = randomF32(rng, slots.length * width, 3);
  const caseOf: Case = {
    cacheK: allocateKvCache(dtype, cacheLen),
    cacheV: allocateKvCache(dtype, cacheLen),
    widenedK: new Float32Array(cacheLen),
    widenedV: new Float32Array(cacheLen),
    exactK: new Float64Array(cacheLen),
    exactV: new Float64Array(cacheLen),
  };
  const slotArray = Int32Array.from(slots);
  const layout16 = { ...layout, dtype };
  writeKv(caseOf.cacheK, caseOf.cacheV, k, v, width, slotArray, layout16);
  reference.writeKv(caseOf.exactK, caseOf.exactV, k, v, width, slotArray, layout);
  for (let i = 0; i < cacheLen; i++) {
    for (const [cache, exact, widened] of [
      [caseOf.cacheK, caseOf.exactK, caseOf.widenedK],
      [caseOf.cacheV, caseOf.exactV, caseOf.widenedV],
    ] as const) {
      const expected = toBits[dtype](exact[i]);
      if (cache[i] !== expected)
        throw new Error(`${dtype} element ${i}: ${cache[i]} != ${expected} (${exact[i]})`);
      widened[i] = fromBits[dtype](cache[i]);
    }
  }
  return { caches: caseOf, blockTables, maxBlocksPerSeq };
}

describe('16-bit KV caches', () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    for (const threads of [1, 2]) {
      it(`${dtype}: writeKv rounds to nearest even; attention equals the f32 cache of the rounded values, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        const layout: KvLayout = { numKvHeads: 2, headDim: 40, blockSize: 16 };
        const numHeads = 6;
        // A decode row, a chunked prefill and a whole prefill in one batch.
        const contextLens = [37, 50, 19];
        const numQueries = [1, 9, 19];
        const { caches, blockTables, maxBlocksPerSeq } = fillCaches(dtype, layout, contextLens);
        const queryStart = new Int32Array(contextLens.length + 1);
        numQueries.forEach((n, i) => {
          queryStart[i + 1] = queryStart[i] + n;
        });
        const tokens = queryStart[contextLens.length];
        const qRowStride = numHeads * layout.headDim;
        const q = randomF32(rng, tokens * qRowStride, 2);
        const batch = { queryStart, contextLens: Int32Array.from(contextLens), blockTables, maxBlocksPerSeq };
        const scale = 1 / Math.sqrt(layout.headDim);
        // Native attention over a cache pair, and the float64 reference over f32/f64 values.
        const native = (k: KvCacheArray, v: KvCacheArray, kvLayout: KvLayout) => {
          const out = new Float32Array(tokens * qRowStride).fill(Number.NaN);
          pagedAttention(out, q, qRowStride, k, v, batch, numHeads, kvLayout, scale);
          return out;
        };
        const float64 = (k: ArrayLike<number>, v: ArrayLike<number>) =>
          reference.pagedAttention(q, qRowStride, k, v, batch, numHeads, layout, scale);
        const out16 = native(caches.cacheK, caches.cacheV, { ...layout, dtype });
        const out32 = native(caches.widenedK, caches.widenedV, layout);
        for (let i = 0; i < out16.length; i++)
          if (!Object.is(out16[i], out32[i])) throw new Error(`element ${i}: ${out16[i]} != ${out32[i]}`);
        // Against float64 on the rounded values: the f32 kernel's own bound (attention.test.ts).
        expect(relativeError(out16, float64(caches.widenedK, caches.widenedV))).toBeLessThan(2e-6);
        // Against float64 on the unrounded values: each K/V value is off by at most 2^-9 (bf16)
        // or 2^-12 (f16) of itself; with |q.k| scores near 1 the outputs move by about as much.
        const exact = float64(caches.exactK, caches.exactV);
        const error = relativeError(out16, exact);
        console.log(
          `${dtype} KV, ${threads} thread(s): ${error.toExponential(2)} of max|out| from float64 on unrounded K/V`,
        );
        expect(error).toBeLessThan(dtype === 'bf16' ? 1.5e-2 : 2e-3);
        expect(error).toBeGreaterThan(0);
      });
    }
  }

  it('a cache whose array type does not match its dtype is refused', () => {
    const layout: KvLayout = { numKvHeads: 1, headDim: 8, blockSize: 4, dtype: 'bf16' as KvDType };
    const f32 = new Float32Array(32);
    const x = new Float32Array(8);
    expect(() => writeKv(f32, f32, x, x, 8, Int32Array.of(0), layout)).toThrow(/Uint16Array/);
  });
});
