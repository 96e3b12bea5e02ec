import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, relativeError, testSeed, toF64 } from '../test/test-support.ts';
import { type KvLayout, pagedAttention, reference, setNumThreads, writeKv } from './index.ts';

const rng = makeRng(testSeed());
afterEach(() => setNumThreads(1));

interface SeqSpec {
  contextLen: number; // tokens in the cache after this step
  numQueries: number; // this step's queries (the last numQueries positions)
}

/** Shuffled distinct block ids so tables are not contiguous. */
function shuffledIds(count: number): number[] {
  const ids = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}

/** Fills a paged cache for the sequences through writeKv (checked against the reference
 *  writeKv), runs native and reference attention on a strided q and compares. */
function runCase(seqs: SeqSpec[], numHeads: number, layout: KvLayout): number {
  const { numKvHeads, headDim, blockSize } = layout;
  const blocksPer = seqs.map((s) => Math.ceil(s.contextLen / blockSize));
  const maxBlocksPerSeq = Math.max(1, ...blocksPer) + 1; // one spare entry left as garbage
  const numBlocks = blocksPer.reduce((a, b) => a + b, 0) + 3;
  const ids = shuffledIds(numBlocks);
  const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq).fill(-7);
  let next = 0;
  seqs.forEach((_, s) => {
    for (let b = 0; b < blocksPer[s]; b++) blockTables[s * maxBlocksPerSeq + b] = ids[next++];
  });

  const cacheLen = numBlocks * numKvHeads * blockSize * headDim;
  const kCache = randomF32(rng, cacheLen); // garbage outside written slots must not matter
  const vCache = randomF32(rng, cacheLen);
  const kRef = toF64(kCache);
  const vRef = toF64(vCache);
  // Write every sequence's whole context in one writeKv call, K/V as views of a qkv-like row.
  const kvWidth = numKvHeads * headDim;
  const rowStride = 2 * kvWidth + 5;
  const slots: number[] = [];
  seqs.forEach((s, si) => {
    for (let p = 0; p < s.contextLen; p++) {
      const block = blockTables[si * maxBlocksPerSeq + Math.floor(p / blockSize)];
      slots.push(block * blockSize + (p % blockSize));
    }
  });
  const kv = randomF32(rng, slots.length * rowStride);
  const k = kv.subarray(0);
  const v = kv.subarray(kvWidth);
  const slotArray = Int32Array.from(slots);
  writeKv(kCache, vCache, k, v, rowStride, slotArray, layout);
  reference.writeKv(kRef, vRef, k, v, rowStride, slotArray, layout);
  expect(Array.from(kCache)).toEqual(Array.from(kRef));
  expect(Array.from(vCache)).toEqual(Array.from(vRef));

  const queryStart = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => {
    queryStart[i + 1] = queryStart[i] + s.numQueries;
  });
  const totalQueries = queryStart[seqs.length];
  const qRowStride = numHeads * headDim + 2 * kvWidth; // q inside a fused qkv row
  const q = randomF32(rng, Math.max(1, totalQueries) * qRowStride, 2);
  const batch = {
    queryStart,
    contextLens: Int32Array.from(seqs, (s) => s.contextLen),
    blockTables,
    maxBlocksPerSeq,
  };
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(totalQueries * numHeads * headDim).fill(Number.NaN);
  pagedAttention(out, q, qRowStride, kCache, vCache, batch, numHeads, layout, scale);
  const ref = reference.pagedAttention(q, qRowStride, kRef, vRef, batch, numHeads, layout, scale);
  return relativeError(out, ref);
}

// Outputs are convex combinations of V rows; f32 dot products, exp (rel. 2e-7) and sums over
// up to ~300 keys: observed errors reach ~2.3e-7 of max|out|, so 2e-6 leaves ~9x margin.
const bound = 2e-6;

describe('pagedAttention against the float64 reference', () => {
  for (const threads of [1, 2]) {
    for (const [numHeads, numKvHeads] of [
      [4, 4],
      [8, 4],
      [8, 2],
    ]) {
      const ratio = numHeads / numKvHeads;
      it(`prefill of several sequences, GQA ${ratio}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        const layout = { numKvHeads, headDim: 32, blockSize: 16 };
        const seqs = [
          { contextLen: 1, numQueries: 1 },
          { contextLen: 47, numQueries: 47 },
          { contextLen: 16, numQueries: 16 },
          { contextLen: 100, numQueries: 100 },
        ];
        expect(runCase(seqs, numHeads, layout)).toBeLessThan(bound);
      });

      it(`chunked prefill (context before the chunk), GQA ${ratio}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        const layout = { numKvHeads, headDim: 24, blockSize: 5 };
        const seqs = [
          { contextLen: 70, numQueries: 33 },
          { contextLen: 12, numQueries: 3 },
        ];
        expect(runCase(seqs, numHeads, layout)).toBeLessThan(bound);
      });

      it(`decode batch with mixed lengths and a prefill in the same batch, GQA ${ratio}, ${threads} thread(s)`, () => {
        setNumThreads(threads);
        const layout = { numKvHeads, headDim: 64, blockSize: 16 };
        const seqs = [
          { contextLen: 301, numQueries: 1 },
          { contextLen: 1, numQueries: 1 },
          { contextLen: 17, numQueries: 1 },
          { contextLen: 64, numQueries: 0 }, // in the batch but no query this step
          { contextLen: 40, numQueries: 9 },
          { contextLen: 129, numQueries: 1 },
        ];
        expect(runCase(seqs, numHeads, layout)).toBeLessThan(bound);
      });
    }
  }

  it('odd head size (not a multiple of 8) and block size 1', () => {
    expect(
      runCase([{ contextLen: 9, numQueries: 4 }], 6, { numKvHeads: 3, headDim: 10, blockSize: 1 }),
    ).toBeLessThan(bound);
  });

  it('an empty batch does nothing', () => {
    const out = new Float32Array(0);
    const cache = new Float32Array(64);
    pagedAttention(
      out,
      new Float32Array(0),
      64,
      cache,
      cache,
      {
        queryStart: Int32Array.of(0),
        contextLens: new Int32Array(0),
        blockTables: new Int32Array(0),
        maxBlocksPerSeq: 0,
      },
      2,
      { numKvHeads: 1, headDim: 32, blockSize: 2 },
      0.1,
    );
  });
});
