import { MessageChannel } from 'node:worker_threads';
import { HostKvStore, KV_STORE_INBOUND_TAGS, KvStoreActor, slotBytes } from '@seesaw/kv-store';
import { type ModelConfig, Xoshiro128 } from '@seesaw/model';
import { type Range, type StepBatch, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStoreSwapper } from './device-kv-store-swap.ts';
import { KvCacheArena } from './kv-cache-arena.ts';
import { openKvStoreLink, regionSharerOf } from './kv-store-link.ts';
import { blockByteRanges, KvTouchAhead, PAGE_BYTES, pageTouchOffsets } from './kv-touch-ahead.ts';
import { PagedKvCache } from './paged-kv-cache.ts';

// A model of 4 layers x 4 KV heads on two devices: under P2 device s holds layers [2s, 2s+2) x
// every head, under T2 rank r every layer x heads [2r, 2r+2); both views tile the same arena.
const MODEL = { numLayers: 4, numKvHeads: 4, headDim: 8 };
const BLOCK_SIZE = 4;
const TOKEN = 'touch-ahead-test';
const p2Config = { ...MODEL, numLayers: 2 } as ModelConfig;
const t2Config = { ...MODEL, numKvHeads: 2 } as ModelConfig;

function seeded(name: string): Xoshiro128 {
  const seed = Math.floor(Math.random() * 2 ** 31);
  console.log(`${name}: seed ${seed}`);
  return new Xoshiro128(seed);
}

describe('pageTouchOffsets', () => {
  it('writes into every page a range overlaps, and only inside the range', () => {
    const rng = seeded('pageTouchOffsets');
    for (let trial = 0; trial < 200; trial++) {
      const start = Math.floor(rng.nextFloat() * 5 * PAGE_BYTES);
      const end = start + 1 + Math.floor(rng.nextFloat() * 6 * PAGE_BYTES);
      const offsets = pageTouchOffsets({ start, end });
      expect(offsets.every((at) => at >= start && at < end)).toBe(true);
      const pages = new Set(offsets.map((at) => Math.floor(at / PAGE_BYTES)));
      for (let page = Math.floor(start / PAGE_BYTES); page <= Math.floor((end - 1) / PAGE_BYTES); page++)
        expect(pages.has(page), `page ${page} of [${start}, ${end})`).toBe(true);
    }
    expect(pageTouchOffsets({ start: 10, end: 10 })).toEqual([]);
  });
});

describe('KvTouchAhead', () => {
  it('names exactly the bytes of the other view blocks, per layer array', () => {
    const arena = new KvCacheArena();
    const numBlocks = 16;
    new PagedKvCache(p2Config, numBlocks, BLOCK_SIZE, 'bf16', arena);
    const t2 = new PagedKvCache(t2Config, numBlocks, BLOCK_SIZE, 'bf16', arena);
    const blockBytes = BLOCK_SIZE * t2Config.numKvHeads * MODEL.headDim * 2;
    const layerBytes = numBlocks * blockBytes;
    // K of layer l is array 2l, V array 2l + 1 (PagedKvCache's order), each layerBytes long.
    const expected = [0, 2, 4, 6, 1, 3, 5, 7].map((array) => ({
      start: array * layerBytes + 3 * blockBytes,
      end: array * layerBytes + 7 * blockBytes,
    }));
    expect(blockByteRanges(t2, 3, 7)).toEqual(expected);
    expect(blockByteRanges(t2, 5, 5)).toEqual([]);
  });

  it('touches blocks from 0 up, stops at the cache end and changes no byte', () => {
    const rng = seeded('touch changes nothing');
    const arena = new KvCacheArena();
    const p2 = new PagedKvCache(p2Config, 64, BLOCK_SIZE, 'bf16', arena);
    const bytes = new Uint8Array(p2.keys[0]!.buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng.nextFloat() * 256);
    const before = bytes.slice();
    const ahead = new KvTouchAhead(new PagedKvCache(t2Config, 64, BLOCK_SIZE, 'bf16', arena));
    expect(ahead.touchNext(10)).toBe(10);
    expect(ahead.touchNext(0)).toBe(0);
    expect(ahead.touchNext(100)).toBe(54);
    expect(ahead.touchNext(1)).toBe(0);
    expect(ahead.touchedBlocks).toBe(64);
    expect(ahead.numPageWrites).toBeGreaterThan(0);
    expect(Buffer.compare(bytes, before)).toBe(0);
  });

  it('refuses a cache that is not viewed over shared bytes', () => {
    expect(() => new KvTouchAhead(new PagedKvCache(t2Config, 4, BLOCK_SIZE, 'f32'))).toThrow(
      /SharedArrayBuffer/,
    );
  });
});

describe('KvStoreSwapper with touch-ahead', () => {
  const opened: KvStoreSwapper[] = [];
  afterEach(() => {
    for (const swapper of opened.splice(0)) swapper.close('test done');
  });

  function step(stepId: number, extra: Partial<StepBatch>): StepBatch {
    return { stepId, addedSeqs: [], releasedSeqIds: [], seqs: [], ...extra };
  }

  it('writes back under P2 touching the T2 blocks, then prefetches into them after the switch: bytes round trip', async () => {
    const rng = seeded('round trip across a switch');
    const layout = { ...MODEL, tokensPerSlot: BLOCK_SIZE, dtype: 'bf16' as const };
    const store = new HostKvStore({ layout, capacityBytes: 16 * slotBytes(layout), isShared: true });
    const actor = new KvStoreActor(store, { name: 'test kv-store', token: TOKEN, log: () => {} });
    const connect = async (cache: PagedKvCache, layers: Range, heads: Range, ahead?: KvTouchAhead) => {
      const { port1, port2 } = new MessageChannel();
      void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
      const link = await openKvStoreLink(port2, { deviceName: 'test device', token: TOKEN });
      const swapper = new KvStoreSwapper(link, cache, layers, heads, regionSharerOf(link), ahead);
      opened.push(swapper);
      expect(await swapper.sharing).toBe(true);
      return swapper;
    };
    const numBlocks = 12;
    const arenas = [new KvCacheArena(), new KvCacheArena()];
    const p2 = arenas.map((arena) => new PagedKvCache(p2Config, numBlocks, BLOCK_SIZE, 'bf16', arena));
    for (const cache of p2)
      for (const array of [...cache.keys, ...cache.values])
        for (let i = 0; i < array.length; i++) array[i] = Math.floor(rng.nextFloat() * 0x10000);
    const aheads = arenas.map(
      (arena) => new KvTouchAhead(new PagedKvCache(t2Config, numBlocks, BLOCK_SIZE, 'bf16', arena)),
    );
    const allHeads = { start: 0, end: 4 };
    const stages = await Promise.all(
      p2.map((cache, s) => connect(cache, { start: 2 * s, end: 2 * s + 2 }, allHeads, aheads[s])),
    );
    // Two sequences in scattered P2 blocks, as a prefill phase leaves them.
    const seqs = [
      { seqId: 1, blockIds: [9, 2, 5], slotIds: [0, 1, 2], numTokens: 12 },
      { seqId: 2, blockIds: [7, 11], slotIds: [3, 4], numTokens: 6 },
    ];
    const expectedOf = (
      seq: (typeof seqs)[number],
      layer: number,
      kv: number,
      head: number,
      t: number,
      d: number,
    ) => {
      const cache = p2[Math.floor(layer / 2)]!;
      const array = (kv === 0 ? cache.keys : cache.values)[layer % 2]!;
      const block = seq.blockIds[Math.floor(t / BLOCK_SIZE)]!;
      return array[((block * MODEL.numKvHeads + head) * BLOCK_SIZE + (t % BLOCK_SIZE)) * MODEL.headDim + d]!;
    };
    const expected = seqs.map((seq) => {
      const values: number[] = [];
      for (let l = 0; l < 4; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = 0; h < 4; h++)
            for (let t = 0; t < seq.numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++) values.push(expectedOf(seq, l, kv, h, t, d));
      return values;
    });
    for (const swapper of stages) {
      const writeBacks = swapper.startWriteBacks(step(0, { kvWriteBacks: seqs }))!;
      writeBacks.onLayerKvWritten(0);
      writeBacks.onLayerKvWritten(1);
      await writeBacks.finish();
    }
    // 12 + 1 tokens in 4 blocks, 6 + 1 in 2: what the decode allocator hands out for the next token.
    for (const ahead of aheads) expect(ahead.touchedBlocks).toBe(6);

    // The switch: T2 ranks view the same arenas; the decode allocator hands out blocks 0.. .
    for (const swapper of stages) await swapper.flush();
    const t2 = arenas.map((arena) => new PagedKvCache(t2Config, numBlocks, BLOCK_SIZE, 'bf16', arena));
    const ranks = await Promise.all(
      t2.map((cache, r) => connect(cache, { start: 0, end: 4 }, { start: 2 * r, end: 2 * r + 2 })),
    );
    const targets = [
      { ...seqs[0]!, blockIds: [0, 1, 2] },
      { ...seqs[1]!, blockIds: [3, 4] },
    ];
    for (const swapper of ranks) swapper.startPrefetches(step(1, { prefetches: targets }));
    await Promise.all(ranks.map((swapper) => swapper.waitForPrefetches([1, 2])));
    targets.forEach((seq, i) => {
      const got: number[] = [];
      for (let l = 0; l < 4; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = 0; h < 4; h++)
            for (let t = 0; t < seq.numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++) {
                const cache = t2[Math.floor(h / 2)]!;
                const array = (kv === 0 ? cache.keys : cache.values)[l]!;
                const block = seq.blockIds[Math.floor(t / BLOCK_SIZE)]!;
                got.push(array[((block * 2 + (h % 2)) * BLOCK_SIZE + (t % BLOCK_SIZE)) * MODEL.headDim + d]!);
              }
      expect(got).toEqual(expected[i]);
    });
  });
});
