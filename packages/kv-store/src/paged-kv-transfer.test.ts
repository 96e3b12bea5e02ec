import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { bitsOf, isBitIdentical, randomBits } from '../test/test-support.ts';
import type { HostKvLayout } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';
import { gatherSequenceKv, type PagedKvLayout, scatterSequenceKv } from './paged-kv-transfer.ts';

const NUM_LAYERS = 3;
const PAGED: PagedKvLayout = { numKvHeads: 4, headDim: 8, blockSize: 4 };
const NUM_BLOCKS = 12;

interface Cache {
  keys: Float32Array[];
  values: Float32Array[];
}

function randomCache(rng: Xoshiro128, layout = PAGED, numBlocks = NUM_BLOCKS): Cache {
  const n = numBlocks * layout.numKvHeads * layout.blockSize * layout.headDim;
  return {
    keys: Array.from({ length: NUM_LAYERS }, () => randomBits(rng, n)),
    values: Array.from({ length: NUM_LAYERS }, () => randomBits(rng, n)),
  };
}

function cloneCache(cache: Cache): Cache {
  return { keys: cache.keys.map((k) => k.slice()), values: cache.values.map((v) => v.slice()) };
}

/** Bits of (layer, K/V, head, token, d) of a sequence in a paged cache, by the device layout formula. */
function pagedBits(
  cache: Cache,
  table: number[],
  layout: PagedKvLayout,
  l: number,
  kv: number,
  h: number,
  t: number,
  d: number,
) {
  const { numKvHeads: H, blockSize: B, headDim: D } = layout;
  const block = table[Math.floor(t / B)]!;
  const array = kv === 0 ? cache.keys[l]! : cache.values[l]!;
  return bitsOf(array)[((block * H + h) * B + (t % B)) * D + d]!;
}

function expectSameSequence(a: Cache, tableA: number[], b: Cache, tableB: number[], numTokens: number): void {
  let numMismatches = 0;
  for (let l = 0; l < NUM_LAYERS; l++)
    for (let kv = 0; kv < 2; kv++)
      for (let h = 0; h < PAGED.numKvHeads; h++)
        for (let t = 0; t < numTokens; t++)
          for (let d = 0; d < PAGED.headDim; d++)
            if (pagedBits(a, tableA, PAGED, l, kv, h, t, d) !== pagedBits(b, tableB, PAGED, l, kv, h, t, d))
              numMismatches++;
  expect(numMismatches).toBe(0);
}

const TABLE_OUT = [7, 2, 11, 0, 5, 9];
const TABLE_IN = [3, 10, 1, 4, 6, 8];
const NUM_TOKENS = 23;

describe('gatherSequenceKv / scatterSequenceKv', () => {
  it('gathers the head-major slice the layout formula predicts', () => {
    const rng = new Xoshiro128(1);
    const cache = randomCache(rng);
    const heads = { start: 1, end: 3 };
    const slice = gatherSequenceKv(cache.keys, cache.values, TABLE_OUT, NUM_TOKENS, PAGED, heads);
    expect(slice.shape).toEqual([NUM_LAYERS, 2, 2, NUM_TOKENS, 8]);
    const bits = bitsOf(slice.data as Float32Array);
    let i = 0;
    let numMismatches = 0;
    for (let l = 0; l < NUM_LAYERS; l++)
      for (let kv = 0; kv < 2; kv++)
        for (let h = heads.start; h < heads.end; h++)
          for (let t = 0; t < NUM_TOKENS; t++)
            for (let d = 0; d < 8; d++)
              if (bits[i++] !== pagedBits(cache, TABLE_OUT, PAGED, l, kv, h, t, d)) numMismatches++;
    expect(numMismatches).toBe(0);
  });

  it('swaps a sequence out to the store and back into different blocks bit-identically', () => {
    const rng = new Xoshiro128(2);
    const source = randomCache(rng);
    const original = cloneCache(source);
    const layout: HostKvLayout = {
      numLayers: NUM_LAYERS,
      numKvHeads: 4,
      headDim: 8,
      tokensPerSlot: 4,
      dtype: 'f32',
    };
    const store = new HostKvStore({ layout, capacityBytes: 1 << 20 });
    const seqId = 42;
    expect(store.reserve(seqId, 6).ok).toBe(true);
    const allHeads = { start: 0, end: 4 };
    // Swap out one layer at a time, as prefill streams each layer when it is computed.
    for (let l = 0; l < NUM_LAYERS; l++) {
      const slice = gatherSequenceKv(
        [source.keys[l]!],
        [source.values[l]!],
        TABLE_OUT,
        NUM_TOKENS,
        PAGED,
        allHeads,
      );
      const put = store.put(
        { seqId, layers: { start: l, end: l + 1 }, heads: allHeads, tokens: { start: 0, end: NUM_TOKENS } },
        slice,
      );
      expect(put.ok).toBe(true);
    }
    // The device reuses the blocks for something else.
    for (const k of [...source.keys, ...source.values]) k.set(randomBits(rng, k.length));
    const target = randomCache(rng);
    const untouched = cloneCache(target);
    const got = store.get({
      seqId,
      layers: { start: 0, end: NUM_LAYERS },
      heads: allHeads,
      tokens: { start: 0, end: NUM_TOKENS },
    });
    if (!got.ok) throw new Error(got.reason);
    scatterSequenceKv(target.keys, target.values, TABLE_IN, NUM_TOKENS, PAGED, allHeads, got.tensor);
    expectSameSequence(original, TABLE_OUT, target, TABLE_IN, NUM_TOKENS);
    // Blocks outside the new table, and the unused tail of its last block, are untouched.
    const blockElements = 4 * 4 * 8;
    for (let l = 0; l < NUM_LAYERS; l++) {
      for (let block = 0; block < NUM_BLOCKS; block++) {
        if (TABLE_IN.includes(block)) continue;
        const range = [block * blockElements, (block + 1) * blockElements] as const;
        expect(
          isBitIdentical(target.keys[l]!.subarray(...range), untouched.keys[l]!.subarray(...range)),
        ).toBe(true);
        expect(
          isBitIdentical(target.values[l]!.subarray(...range), untouched.values[l]!.subarray(...range)),
        ).toBe(true);
      }
      // Token 23 of block 8 (slot 3) of head 2: never part of the sequence.
      const tail = ((8 * 4 + 2) * 4 + 3) * 8;
      expect(
        isBitIdentical(target.keys[l]!.subarray(tail, tail + 8), untouched.keys[l]!.subarray(tail, tail + 8)),
      ).toBe(true);
    }
  });

  it('composes tensor-parallel ranks: each puts its heads, one device gets them all', () => {
    const rng = new Xoshiro128(3);
    const rankLayout: PagedKvLayout = { ...PAGED, numKvHeads: 2 };
    const ranks = [randomCache(rng, rankLayout), randomCache(rng, rankLayout)];
    const tables = [TABLE_OUT, [0, 1, 2, 3, 4, 5]];
    const layout: HostKvLayout = {
      numLayers: NUM_LAYERS,
      numKvHeads: 4,
      headDim: 8,
      tokensPerSlot: 8,
      dtype: 'f32',
    };
    const store = new HostKvStore({ layout, capacityBytes: 1 << 20 });
    store.reserve(1, 3);
    const tokens = { start: 0, end: NUM_TOKENS };
    ranks.forEach((cache, rank) => {
      const slice = gatherSequenceKv(cache.keys, cache.values, tables[rank]!, NUM_TOKENS, rankLayout, {
        start: 0,
        end: 2,
      });
      const heads = { start: rank * 2, end: rank * 2 + 2 };
      expect(store.put({ seqId: 1, layers: { start: 0, end: NUM_LAYERS }, heads, tokens }, slice).ok).toBe(
        true,
      );
    });
    const whole = randomCache(rng);
    const got = store.get({
      seqId: 1,
      layers: { start: 0, end: NUM_LAYERS },
      heads: { start: 0, end: 4 },
      tokens,
    });
    if (!got.ok) throw new Error(got.reason);
    scatterSequenceKv(
      whole.keys,
      whole.values,
      TABLE_IN,
      NUM_TOKENS,
      PAGED,
      { start: 0, end: 4 },
      got.tensor,
    );
    let numMismatches = 0;
    for (let l = 0; l < NUM_LAYERS; l++)
      for (let kv = 0; kv < 2; kv++)
        for (let h = 0; h < 4; h++)
          for (let t = 0; t < NUM_TOKENS; t++)
            for (let d = 0; d < 8; d++) {
              const rank = h >> 1;
              const expected = pagedBits(ranks[rank]!, tables[rank]!, rankLayout, l, kv, h & 1, t, d);
              if (pagedBits(whole, TABLE_IN, PAGED, l, kv, h, t, d) !== expected) numMismatches++;
            }
    expect(numMismatches).toBe(0);
  });

  it('moves only tokens from firstToken on (decode appends)', () => {
    const rng = new Xoshiro128(4);
    const source = randomCache(rng);
    const target = randomCache(rng);
    const before = cloneCache(target);
    const heads = { start: 0, end: 4 };
    const slice = gatherSequenceKv(source.keys, source.values, TABLE_OUT, NUM_TOKENS, PAGED, heads, {
      firstToken: 18,
    });
    expect(slice.shape).toEqual([NUM_LAYERS, 2, 4, 5, 8]);
    scatterSequenceKv(target.keys, target.values, TABLE_IN, NUM_TOKENS, PAGED, heads, slice, {
      firstToken: 18,
    });
    for (let h = 0; h < 4; h++)
      for (let t = 0; t < NUM_TOKENS; t++) {
        const from = t >= 18 ? source : before;
        const fromTable = t >= 18 ? TABLE_OUT : TABLE_IN;
        expect(pagedBits(target, TABLE_IN, PAGED, 2, 1, h, t, 5)).toBe(
          pagedBits(from, fromTable, PAGED, 2, 1, h, t, 5),
        );
      }
  });

  it('rejects impossible arguments', () => {
    const cache = randomCache(new Xoshiro128(5));
    const heads = { start: 0, end: 4 };
    expect(() => gatherSequenceKv(cache.keys, cache.values, [1, 2], 9, PAGED, heads)).toThrow(
      /need 3 blocks/,
    );
    expect(() => gatherSequenceKv(cache.keys, cache.values, [1, 12], 8, PAGED, heads)).toThrow(
      /entry 1 is 12/,
    );
    expect(() => gatherSequenceKv(cache.keys, cache.values, [1], 4, PAGED, { start: 2, end: 5 })).toThrow(
      /heads/,
    );
    expect(() => gatherSequenceKv(cache.keys, cache.values.slice(1), [1], 4, PAGED, heads)).toThrow(
      /same nonzero/,
    );
    expect(() =>
      scatterSequenceKv(cache.keys, cache.values, [1], 4, PAGED, heads, new Float32Array(10)),
    ).toThrow(/needs 768 f32/);
  });
});
