import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import type { HostKvLayout, KvDType, KvSliceBox } from './host-kv-layout.ts';
import { slotBytes } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';
import { type SharedKvCache, viewSharedKvCache } from './shared-kv-cache.ts';

// The kv-store thread's own copy between a device's shared paged cache and its slots
// (copyFromCache / copyIntoCache), checked element by element against direct indexing of both
// layouts, for block sizes equal to and different from the slot size, a cache holding only some
// layers x heads, a box of fewer, and tokens not starting at 0.

const MODEL = { numLayers: 4, numKvHeads: 4, headDim: 8 };
const NUM_SLOTS = 10;
const NUM_BLOCKS = 9;
/** The shard the cache holds: global layers [1, 3) x heads [1, 3). */
const CACHE_LAYERS = { start: 1, end: 3 };
const CACHE_HEADS = { start: 1, end: 3 };

function sharedCache(dtype: KvDType, blockSize: number, rng?: Xoshiro128): SharedKvCache {
  const numLayers = CACHE_LAYERS.end - CACHE_LAYERS.start;
  const numHeads = CACHE_HEADS.end - CACHE_HEADS.start;
  const elementBytes = dtype === 'f32' ? 4 : 2;
  const arrayBytes = NUM_BLOCKS * numHeads * blockSize * MODEL.headDim * elementBytes;
  const buffer = new SharedArrayBuffer(2 * numLayers * arrayBytes + 64);
  // K and V interleaved after a 64-byte gap, as a device's arena might lay them out.
  const keyOffsets = Array.from({ length: numLayers }, (_, i) => 64 + 2 * i * arrayBytes);
  const valueOffsets = keyOffsets.map((offset) => offset + arrayBytes);
  const geometry = {
    layers: CACHE_LAYERS,
    heads: CACHE_HEADS,
    dtype,
    numBlocks: NUM_BLOCKS,
    blockSize,
    headDim: MODEL.headDim,
    keyOffsets,
    valueOffsets,
  };
  const cache = viewSharedKvCache(geometry, buffer);
  if (typeof cache === 'string') throw new Error(cache);
  if (rng) {
    const random =
      dtype === 'f32' ? () => rng.nextFloat() * 2 - 1 : () => Math.floor(rng.nextFloat() * 0x10000);
    for (const array of [...cache.keys, ...cache.values])
      for (let i = 0; i < array.length; i++) array[i] = random();
  }
  return cache;
}

/** Element (global layer, K/V, global head, token, d) of a sequence laid over `blockIds`. */
function cacheElement(
  cache: SharedKvCache,
  blockIds: number[],
  l: number,
  kv: number,
  h: number,
  t: number,
  d: number,
) {
  const H = cache.heads.end - cache.heads.start;
  const B = cache.blockSize;
  const array = (kv === 0 ? cache.keys : cache.values)[l - cache.layers.start]!;
  const block = blockIds[Math.floor(t / B)]!;
  return array[((block * H + (h - cache.heads.start)) * B + (t % B)) * cache.headDim + d]!;
}

function storeOf(dtype: KvDType, tokensPerSlot: number): HostKvStore {
  const layout: HostKvLayout = { ...MODEL, tokensPerSlot, dtype };
  return new HostKvStore({ layout, capacityBytes: NUM_SLOTS * slotBytes(layout), isShared: true });
}

describe('HostKvStore copies with a shared device cache', () => {
  // [dtype, block size, slot size, box layers, box heads, first token]. With blocks as large as
  // slots, whole-slot runs copy all of the box's heads at once, partial ones head by head.
  const cases: Array<[KvDType, number, number, [number, number], [number, number], number]> = [
    ['f32', 4, 4, [2, 3], [1, 3], 2],
    ['bf16', 4, 4, [2, 3], [1, 3], 2],
    ['f32', 3, 4, [2, 3], [1, 3], 2],
    ['bf16', 5, 4, [2, 3], [1, 3], 2],
    ['bf16', 4, 4, [1, 3], [2, 3], 0],
    ['f32', 4, 4, [1, 3], [1, 2], 4],
    ['f32', 5, 4, [1, 3], [1, 3], 0],
    ['bf16', 8, 4, [1, 3], [1, 3], 0],
  ];
  it.each(cases)(
    '%s, blocks of %i tokens, slots of %i, layers %j x heads %j from token %i: out to the slots and back into other blocks',
    (dtype, blockSize, tokensPerSlot, [layer0, layerEnd], [head0, headEnd], token0) => {
      const seed = 40 + blockSize * 10 + (dtype === 'f32' ? 1 : 2) + 100 * token0 + 1000 * head0;
      const rng = new Xoshiro128(seed);
      const source = sharedCache(dtype, blockSize, rng);
      const store = storeOf(dtype, tokensPerSlot);
      const numTokens = 11;
      const outBlocks = [7, 2, 5, 0].slice(0, Math.ceil(numTokens / blockSize));
      const inBlocks = [1, 8, 3, 6].slice(0, Math.ceil(numTokens / blockSize));
      const slotIds = [9, 0, 4, 6].slice(0, Math.ceil(numTokens / tokensPerSlot));
      const box: KvSliceBox = {
        seqId: 5,
        layers: { start: layer0, end: layerEnd },
        heads: { start: head0, end: headEnd },
        tokens: { start: token0, end: numTokens },
        slotIds,
      };
      const out = store.copyFromCache(box, source, outBlocks);
      expect(out, `seed ${seed}`).toEqual({ ok: true });
      // What the slots hold is what a get returns: compare it with the cache, element by element.
      const got = store.get(box);
      if (!got.ok) throw new Error(got.reason);
      let i = 0;
      for (let l = layer0; l < layerEnd; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = head0; h < headEnd; h++)
            for (let t = token0; t < numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++)
                expect(got.tensor.data[i++]).toBe(cacheElement(source, outBlocks, l, kv, h, t, d));
      // Tokens before the box, a head or a layer beside it were never copied out: reading them is
      // an error, not stale bytes.
      if (token0 > 0) expect(store.get({ ...box, tokens: { start: 0, end: token0 + 1 } }).ok).toBe(false);
      const otherHead = headEnd < MODEL.numKvHeads ? headEnd : head0 - 1;
      expect(store.get({ ...box, heads: { start: otherHead, end: otherHead + 1 } }).ok).toBe(false);
      expect(store.get({ ...box, layers: { start: layerEnd, end: layerEnd + 1 } }).ok).toBe(false);

      const target = sharedCache(dtype, blockSize);
      expect(store.copyIntoCache(box, target, inBlocks)).toEqual({ ok: true });
      let numNonZero = 0;
      for (const array of [...target.keys, ...target.values])
        numNonZero += array.filter((x) => x !== 0).length;
      let numExpected = 0;
      for (let l = layer0; l < layerEnd; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = head0; h < headEnd; h++)
            for (let t = token0; t < numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++) {
                const value = cacheElement(source, outBlocks, l, kv, h, t, d);
                expect(cacheElement(target, inBlocks, l, kv, h, t, d)).toBe(value);
                if (value !== 0) numExpected++;
              }
      // Nothing outside the box was written.
      expect(numNonZero).toBe(numExpected);
    },
  );

  it('refuses a copy that does not fit the cache or the store, naming what is wrong', () => {
    const cache = sharedCache('bf16', 4, new Xoshiro128(50));
    const store = storeOf('bf16', 4);
    const box: KvSliceBox = {
      seqId: 1,
      layers: { start: 1, end: 3 },
      heads: { start: 1, end: 3 },
      tokens: { start: 0, end: 6 },
      slotIds: [3, 4],
    };
    const reason = (result: { ok: boolean; reason?: string }) => (result.ok ? 'ok' : result.reason);
    expect(reason(store.copyFromCache({ ...box, layers: { start: 0, end: 2 } }, cache, [0, 1]))).toMatch(
      /layers \[0, 2\) are not in the shared cache's \[1, 3\)/,
    );
    expect(reason(store.copyFromCache({ ...box, heads: { start: 2, end: 4 } }, cache, [0, 1]))).toMatch(
      /heads \[2, 4\) are not in the shared cache's \[1, 3\)/,
    );
    expect(reason(store.copyFromCache(box, cache, [0]))).toMatch(/6 tokens need 2 blocks, got 1/);
    expect(reason(store.copyFromCache(box, cache, [0, NUM_BLOCKS]))).toMatch(
      /block 9 is not one of the shared cache's 9 blocks/,
    );
    expect(reason(storeOf('f32', 4).copyFromCache(box, cache, [0, 1]))).toMatch(
      /cache holds bf16, store holds f32/,
    );
    expect(reason(store.copyIntoCache(box, cache, [0, 1]))).toMatch(/never written/);
    expect(reason(store.copyFromCache({ ...box, slotIds: [3, NUM_SLOTS] }, cache, [0, 1]))).toMatch(
      /slot 10/,
    );
  });

  it('refuses a shared cache whose arrays do not fit its region', () => {
    const geometry = {
      layers: CACHE_LAYERS,
      heads: CACHE_HEADS,
      dtype: 'f32' as const,
      numBlocks: 2,
      blockSize: 4,
      headDim: 8,
      keyOffsets: [0, 1024],
      valueOffsets: [512, 1536],
    };
    expect(typeof viewSharedKvCache(geometry, new SharedArrayBuffer(2048))).toBe('object');
    expect(viewSharedKvCache(geometry, new SharedArrayBuffer(2047))).toMatch(/overrun the 2047-byte region/);
    expect(viewSharedKvCache({ ...geometry, keyOffsets: [2, 1024] }, new SharedArrayBuffer(4096))).toMatch(
      /layer 1 K: offset 2 is not aligned to f32/,
    );
    expect(viewSharedKvCache({ ...geometry, valueOffsets: [512] }, new SharedArrayBuffer(4096))).toMatch(
      /2 layers need 2 K and V offsets/,
    );
  });
});
