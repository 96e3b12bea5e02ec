import { MessageChannel } from 'node:worker_threads';
import { HostKvStore, KV_STORE_INBOUND_TAGS, KvStoreActor, slotBytes } from '@seesaw/kv-store';
import { type ModelConfig, Xoshiro128 } from '@seesaw/model';
import { type Range, type StepBatch, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStoreSwapper, openKvStoreLink } from './device-kv-store-swap.ts';
import { PagedKvCache } from './paged-kv-cache.ts';

// Two shards of one model (a pipeline stage x TP rank each: layers [0, 2) x heads [0, 2) and
// layers [2, 4) x heads [2, 4)) swap the same sequence through one kv-store actor, each its own
// box, into slots named by the step. Checked element by element against direct indexing.

const TOKEN = 'swap-test-token';
const BLOCK_SIZE = 4;
const MODEL = { numLayers: 4, numKvHeads: 4, headDim: 8 };
const LAYOUT = { ...MODEL, tokensPerSlot: BLOCK_SIZE, dtype: 'f32' as const };
const NUM_SLOTS = 12;
const NUM_BLOCKS = 8;
const SHARDS: Array<{ layers: Range; heads: Range }> = [
  { layers: { start: 0, end: 2 }, heads: { start: 0, end: 2 } },
  { layers: { start: 2, end: 4 }, heads: { start: 2, end: 4 } },
];

const opened: KvStoreSwapper[] = [];
afterEach(() => {
  for (const swapper of opened.splice(0)) swapper.close('test done');
});

function shardCache(shard: { layers: Range; heads: Range }, rng: Xoshiro128): PagedKvCache {
  const config = {
    numLayers: shard.layers.end - shard.layers.start,
    numKvHeads: shard.heads.end - shard.heads.start,
    headDim: MODEL.headDim,
  } as ModelConfig;
  const cache = new PagedKvCache(config, NUM_BLOCKS, BLOCK_SIZE);
  for (const array of [...cache.keys, ...cache.values])
    for (let i = 0; i < array.length; i++) array[i] = rng.nextFloat() * 2 - 1;
  return cache;
}

/** Element (local layer, K/V, local head, token, d) of a sequence laid out over `blockIds`. */
function cacheElement(
  cache: PagedKvCache,
  blockIds: number[],
  l: number,
  kv: number,
  h: number,
  t: number,
  d: number,
): number {
  const { numKvHeads: H, headDim: D } = cache.layout;
  const block = blockIds[Math.floor(t / BLOCK_SIZE)]!;
  const array = kv === 0 ? cache.keys[l]! : cache.values[l]!;
  return array[((block * H + h) * BLOCK_SIZE + (t % BLOCK_SIZE)) * D + d]!;
}

async function startStore() {
  const store = new HostKvStore({ layout: LAYOUT, capacityBytes: NUM_SLOTS * slotBytes(LAYOUT) });
  const actor = new KvStoreActor(store, { name: 'test kv-store', token: TOKEN, log: () => {} });
  const connect = async (cache: PagedKvCache, shard: { layers: Range; heads: Range }) => {
    const { port1, port2 } = new MessageChannel();
    void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
    const link = await openKvStoreLink(port2, { deviceName: 'test device', token: TOKEN });
    const swapper = new KvStoreSwapper(link, cache, shard.layers, shard.heads);
    opened.push(swapper);
    return swapper;
  };
  return { store, actor, connect };
}

function step(stepId: number, swaps: Partial<Pick<StepBatch, 'swapOuts' | 'swapIns'>>): StepBatch {
  return { stepId, addedSeqs: [], releasedSeqIds: [], seqs: [], ...swaps };
}

describe('KvStoreSwapper', () => {
  it('moves each shard exactly its layers x heads into the named slots and back', async () => {
    const rng = new Xoshiro128(21);
    const { store, actor, connect } = await startStore();
    const caches = SHARDS.map((shard) => shardCache(shard, rng));
    const swappers = await Promise.all(SHARDS.map((shard, i) => connect(caches[i]!, shard)));
    const numTokens = 10;
    const out = { seqId: 7, blockIds: [3, 1, 5], slotIds: [6, 2, 9], numTokens };
    await Promise.all(swappers.map((swapper) => swapper.apply(step(0, { swapOuts: [out] }))));
    expect(actor.counters.numPuts).toBe(2);

    // The store holds each shard's box at its global layers and heads.
    SHARDS.forEach((shard, s) => {
      const got = store.get({
        seqId: 7,
        ...shard,
        tokens: { start: 0, end: numTokens },
        slotIds: out.slotIds,
      });
      if (!got.ok) throw new Error(got.reason);
      const data = got.tensor.data as Float32Array;
      let i = 0;
      for (let l = 0; l < 2; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = 0; h < 2; h++)
            for (let t = 0; t < numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++)
                expect(data[i++]).toBe(cacheElement(caches[s]!, out.blockIds, l, kv, h, t, d));
    });
    // A box one shard did not write is still unwritten (no shard wrote layers [0, 2) x heads [2, 4)).
    const foreign = store.get({
      seqId: 7,
      layers: { start: 0, end: 2 },
      heads: { start: 2, end: 4 },
      tokens: { start: 0, end: 1 },
      slotIds: out.slotIds,
    });
    expect(foreign.ok).toBe(false);

    // Back in, into other blocks: the same elements, untouched blocks unchanged.
    const before = caches.map((cache) => cache.keys.map((k) => k.slice()));
    const back = { ...out, blockIds: [0, 6, 2] };
    await Promise.all(swappers.map((swapper) => swapper.apply(step(1, { swapIns: [back] }))));
    caches.forEach((cache) => {
      for (let l = 0; l < 2; l++)
        for (let kv = 0; kv < 2; kv++)
          for (let h = 0; h < 2; h++)
            for (let t = 0; t < numTokens; t++)
              for (let d = 0; d < MODEL.headDim; d++)
                expect(cacheElement(cache, back.blockIds, l, kv, h, t, d)).toBe(
                  cacheElement(cache, out.blockIds, l, kv, h, t, d),
                );
    });
    caches.forEach((cache, s) => {
      const perBlock = 2 * BLOCK_SIZE * MODEL.headDim;
      for (const untouched of [4, 7])
        expect(cache.keys[0]!.subarray(untouched * perBlock, (untouched + 1) * perBlock)).toEqual(
          before[s]![0]!.subarray(untouched * perBlock, (untouched + 1) * perBlock),
        );
    });
  });

  it('fails a swap the store cannot serve, naming the sequence and the reason', async () => {
    const rng = new Xoshiro128(22);
    const { connect } = await startStore();
    const swapper = await connect(shardCache(SHARDS[0]!, rng), SHARDS[0]!);
    const never = { seqId: 8, blockIds: [0], slotIds: [4], numTokens: 3 };
    await expect(swapper.apply(step(0, { swapIns: [never] }))).rejects.toThrow(
      /swap-in of sequence 8: kv-store: .*never written/,
    );
    const outOfRange = { seqId: 8, blockIds: [0], slotIds: [NUM_SLOTS], numTokens: 3 };
    await expect(swapper.apply(step(1, { swapOuts: [outOfRange] }))).rejects.toThrow(
      /swap-out of sequence 8: kv-store: slot 12 is not one of the store's 12 slots/,
    );
    const badShape = { seqId: 8, blockIds: [0, 1], slotIds: [1], numTokens: 3 };
    await expect(swapper.apply(step(2, { swapOuts: [badShape] }))).rejects.toThrow(/need 1 blocks and slots/);
    swapper.close('gone');
    await expect(
      swapper.apply(step(3, { swapOuts: [{ seqId: 8, blockIds: [0], slotIds: [1], numTokens: 3 }] })),
    ).rejects.toThrow(/kv-store link closed/);
  });
});
