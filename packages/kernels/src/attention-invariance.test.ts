// docs/determinism.md for attention, checked on the bits: a query row's output must not depend
// on the prefill chunk it is computed in, the other sequences in the batch, the query tile it
// lands in, or the thread count.
import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../test/test-support.ts';
import { type AttentionBatch, type KvLayout, pagedAttention, setNumThreads } from './index.ts';

const rng = makeRng(testSeed());
afterEach(() => setNumThreads(1));

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

interface Seq {
  table: number[]; // block ids
  contextLen: number;
  q: Float32Array; // [numQueries][numHeads * headDim], the last numQueries positions
}

/** Attention for a batch of sequences sharing one random cache; returns each sequence's output. */
function attend(
  seqs: Seq[],
  numHeads: number,
  layout: KvLayout,
  cache: { k: Float32Array; v: Float32Array },
) {
  const width = numHeads * layout.headDim;
  const maxBlocksPerSeq = Math.max(1, ...seqs.map((s) => s.table.length));
  const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq);
  for (const [i, s] of seqs.entries()) blockTables.set(s.table, i * maxBlocksPerSeq);
  const queryStart = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => {
    queryStart[i + 1] = queryStart[i] + s.q.length / width;
  });
  const q = new Float32Array(Math.max(1, queryStart[seqs.length]) * width);
  for (const [i, s] of seqs.entries()) q.set(s.q, queryStart[i] * width);
  const batch: AttentionBatch = {
    queryStart,
    contextLens: Int32Array.from(seqs, (s) => s.contextLen),
    blockTables,
    maxBlocksPerSeq,
  };
  const out = new Float32Array(queryStart[seqs.length] * width);
  pagedAttention(out, q, width, cache.k, cache.v, batch, numHeads, layout, 1 / Math.sqrt(layout.headDim));
  return seqs.map((_, i) => out.subarray(queryStart[i] * width, queryStart[i + 1] * width));
}

function randomTable(blocks: number, numBlocks: number): number[] {
  return Array.from({ length: blocks }, () => Math.floor(rng() * numBlocks));
}

/** A neighbour sequence: random context, 1 (decode) or a few (prefill chunk) queries. */
function neighbour(numHeads: number, layout: KvLayout, numBlocks: number): Seq {
  const contextLen = 1 + Math.floor(rng() * 120);
  const numQueries = rng() < 0.6 ? 1 : 1 + Math.floor(rng() * Math.min(contextLen, 40));
  return {
    table: randomTable(Math.ceil(contextLen / layout.blockSize), numBlocks),
    contextLen,
    q: randomF32(rng, numQueries * numHeads * layout.headDim, 2),
  };
}

describe('pagedAttention is chunk-, batch- and thread-invariant (bit-equal)', () => {
  for (const [numHeads, numKvHeads, headDim, blockSize] of [
    [8, 4, 32, 16],
    [8, 2, 20, 5],
    [4, 4, 64, 7],
  ]) {
    it(`heads ${numHeads}/${numKvHeads}, headDim ${headDim}, block ${blockSize}`, () => {
      const layout = { numKvHeads, headDim, blockSize };
      const numBlocks = 64;
      const cacheLen = numBlocks * numKvHeads * blockSize * headDim;
      const cache = { k: randomF32(rng, cacheLen), v: randomF32(rng, cacheLen) };
      const width = numHeads * headDim;
      const length = 90 + Math.floor(rng() * 60);
      const table = randomTable(Math.ceil(length / blockSize), numBlocks);
      const q = randomF32(rng, length * width, 2);
      setNumThreads(1);
      const [whole] = attend([{ table, contextLen: length, q }], numHeads, layout, cache);
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        for (const budget of [1, 3, 16, 37]) {
          // Chunked prefill: positions [a, b) with the earlier ones already in the cache,
          // each chunk among random neighbours at a random place in the batch.
          for (let a = 0; a < length; a += budget) {
            const b = Math.min(length, a + budget);
            const mine: Seq = { table, contextLen: b, q: q.subarray(a * width, b * width) };
            const seqs = Array.from({ length: Math.floor(rng() * 6) }, () =>
              neighbour(numHeads, layout, numBlocks),
            );
            const at = Math.floor(rng() * (seqs.length + 1));
            seqs.splice(at, 0, mine);
            const got = attend(seqs, numHeads, layout, cache)[at];
            expect(bits(got), `budget ${budget} chunk [${a}, ${b}) threads ${threads}`).toEqual(
              bits(whole.subarray(a * width, b * width)),
            );
          }
        }
      }
    });
  }
});
