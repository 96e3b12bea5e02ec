import { MessageChannel } from 'node:worker_threads';
import { HostKvStore, KV_STORE_INBOUND_TAGS, KvStoreActor, slotBytes } from '@seesaw/kv-store';
import { type ModelConfig, Xoshiro128 } from '@seesaw/model';
import { type Range, type StepBatch, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStoreSwapper } from './device-kv-store-swap.ts';
import { KvCacheArena } from './kv-cache-arena.ts';
import { type KvStoreLinkEndpoint, openKvStoreLink, regionSharerOf } from './kv-store-link.ts';
import { PagedKvCache } from './paged-kv-cache.ts';

// Two shards of one model (a pipeline stage x TP rank each: layers [0, 2) x heads [0, 2) and
// layers [2, 4) x heads [2, 4)) swap the same sequence through one kv-store actor, each its own
// box, into slots named by the step. Checked element by element against direct indexing, on both
// paths: frames (the device gathers, posts, the store copies in) and shared memory (the cache in
// a SharedArrayBuffer the store copies from and into itself, no KV frame at all), f32 and bf16.

const TOKEN = 'swap-test-token';
const BLOCK_SIZE = 4;
const MODEL = { numLayers: 4, numKvHeads: 4, headDim: 8 };
type Path = 'frames' | 'shared';
type KvDType = 'f32' | 'bf16';
const layoutOf = (dtype: KvDType) => ({ ...MODEL, tokensPerSlot: BLOCK_SIZE, dtype });
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

/** A shard's cache of random elements: in a KvCacheArena's shared bytes on the shared path. */
function shardCache(
  shard: { layers: Range; heads: Range },
  rng: Xoshiro128,
  dtype: KvDType = 'f32',
  path: Path = 'frames',
): PagedKvCache {
  const config = {
    numLayers: shard.layers.end - shard.layers.start,
    numKvHeads: shard.heads.end - shard.heads.start,
    headDim: MODEL.headDim,
  } as ModelConfig;
  const arena = path === 'shared' ? new KvCacheArena() : undefined;
  const cache = new PagedKvCache(config, NUM_BLOCKS, BLOCK_SIZE, dtype, arena);
  const random =
    dtype === 'f32' ? () => rng.nextFloat() * 2 - 1 : () => Math.floor(rng.nextFloat() * 0x10000);
  for (const array of [...cache.keys, ...cache.values])
    for (let i = 0; i < array.length; i++) array[i] = random();
  return cache;
}

/** Bytes of tensors the device posted and received on its kv-store link (KV in frames). */
function countFrameTensorBytes(link: KvStoreLinkEndpoint): { posted: number; received: number } {
  const counts = { posted: 0, received: 0 };
  const post = link.post.bind(link);
  link.post = (message, tensors) => {
    counts.posted += (tensors ?? []).reduce((sum, t) => sum + t.data.byteLength, 0);
    post(message, tensors);
  };
  link.onMessage((_message, tensors) => {
    counts.received += tensors.reduce((sum, t) => sum + t.data.byteLength, 0);
  });
  return counts;
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

async function startStore(dtype: KvDType = 'f32', path: Path = 'frames') {
  const layout = layoutOf(dtype);
  const store = new HostKvStore({ layout, capacityBytes: NUM_SLOTS * slotBytes(layout), isShared: true });
  const actor = new KvStoreActor(store, { name: 'test kv-store', token: TOKEN, log: () => {} });
  const frameCounts: Array<{ posted: number; received: number }> = [];
  /** KV bytes that crossed any link in frames, both directions. */
  const frameBytes = () => frameCounts.reduce((sum, c) => sum + c.posted + c.received, 0);
  const connect = async (cache: PagedKvCache, shard: { layers: Range; heads: Range }) => {
    const { port1, port2 } = new MessageChannel();
    void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
    const link = await openKvStoreLink(port2, { deviceName: 'test device', token: TOKEN });
    frameCounts.push(countFrameTensorBytes(link));
    const sharer = path === 'shared' ? regionSharerOf(link) : undefined;
    const swapper = new KvStoreSwapper(link, cache, shard.layers, shard.heads, sharer);
    opened.push(swapper);
    expect(await swapper.sharing).toBe(path === 'shared');
    return swapper;
  };
  return { store, actor, connect, frameBytes };
}

function step(stepId: number, swaps: Partial<Pick<StepBatch, 'swapOuts' | 'swapIns'>>): StepBatch {
  return { stepId, addedSeqs: [], releasedSeqIds: [], seqs: [], ...swaps };
}

describe('KvStoreSwapper', () => {
  const cases: Array<[Path, KvDType]> = [
    ['frames', 'f32'],
    ['frames', 'bf16'],
    ['shared', 'f32'],
    ['shared', 'bf16'],
  ];
  it.each(cases)(
    'moves each shard exactly its layers x heads into the named slots and back (%s, %s)',
    async (path, dtype) => {
      const rng = new Xoshiro128(21);
      const { store, actor, connect, frameBytes } = await startStore(dtype, path);
      const caches = SHARDS.map((shard) => shardCache(shard, rng, dtype, path));
      const swappers = await Promise.all(SHARDS.map((shard, i) => connect(caches[i]!, shard)));
      const numTokens = 10;
      const out = { seqId: 7, blockIds: [3, 1, 5], slotIds: [6, 2, 9], numTokens };
      await Promise.all(swappers.map((swapper) => swapper.apply(step(0, { swapOuts: [out] }))));
      expect(actor.counters.numPuts).toBe(path === 'frames' ? 2 : 0);
      expect(actor.counters.numCopiesOut).toBe(path === 'shared' ? 2 : 0);

      // The store holds each shard's box at its global layers and heads.
      SHARDS.forEach((shard, s) => {
        const got = store.get({
          seqId: 7,
          ...shard,
          tokens: { start: 0, end: numTokens },
          slotIds: out.slotIds,
        });
        if (!got.ok) throw new Error(got.reason);
        const data = got.tensor.data;
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
      // Shared memory: not one byte of KV crossed a link in a frame; frames: both directions did.
      const boxBytes = 2 * 2 * 2 * numTokens * MODEL.headDim * (dtype === 'f32' ? 4 : 2);
      expect(frameBytes()).toBe(path === 'shared' ? 0 : 2 * 2 * boxBytes);
      expect(actor.counters.numBytesCopied).toBe(path === 'shared' ? 2 * 2 * boxBytes : 0);
    },
  );

  it('writes back layer by layer and prefetches by shared-memory copies, no KV frame (bf16)', async () => {
    const rng = new Xoshiro128(24);
    const { actor, connect, frameBytes } = await startStore('bf16', 'shared');
    const shard = SHARDS[1]!;
    const cache = shardCache(shard, rng, 'bf16', 'shared');
    const swapper = await connect(cache, shard);
    const seq = { seqId: 9, blockIds: [6, 3], slotIds: [11, 5], numTokens: 7 };
    const writeBacks = swapper.startWriteBacks({ ...step(0, {}), kvWriteBacks: [seq] })!;
    writeBacks.onLayerKvWritten(0); // as the forward pass would; finish() posts the rest
    await writeBacks.finish();
    expect(actor.counters.numCopiesOut).toBe(2); // one per layer of the shard
    const target = { ...seq, blockIds: [0, 7] };
    swapper.startPrefetches({ ...step(1, {}), prefetches: [target] });
    const wait = await swapper.waitForPrefetches([seq.seqId]);
    const boxBytes = 2 * 2 * 2 * seq.numTokens * MODEL.headDim * 2;
    expect(wait).toMatchObject({ numAwaited: 1, bytesAwaited: boxBytes });
    for (let l = 0; l < 2; l++)
      for (let kv = 0; kv < 2; kv++)
        for (let h = 0; h < 2; h++)
          for (let t = 0; t < seq.numTokens; t++)
            for (let d = 0; d < MODEL.headDim; d++)
              expect(cacheElement(cache, target.blockIds, l, kv, h, t, d)).toBe(
                cacheElement(cache, seq.blockIds, l, kv, h, t, d),
              );
    expect(frameBytes()).toBe(0);
    expect(actor.counters.numBytesCopied).toBe(2 * boxBytes);
  });

  it('keeps the frames when the store cannot see the shared cache (a relayed link to another host)', async () => {
    const rng = new Xoshiro128(23);
    const { actor } = await startStore('bf16', 'frames');
    const cache = shardCache(SHARDS[0]!, rng, 'bf16', 'shared');
    const { port1, port2 } = new MessageChannel();
    void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
    const link = await openKvStoreLink(port2, { deviceName: 'remote device', token: TOKEN });
    const counts = countFrameTensorBytes(link);
    // A region id never announced on this link: what a store behind a relay sees.
    const swapper = new KvStoreSwapper(link, cache, SHARDS[0]!.layers, SHARDS[0]!.heads, () => 99);
    opened.push(swapper);
    expect(await swapper.sharing).toBe(false);
    expect(swapper.isSharedPath).toBe(false);
    const out = { seqId: 3, blockIds: [2, 0], slotIds: [1, 4], numTokens: 6 };
    await swapper.apply(step(0, { swapOuts: [out] }));
    await swapper.apply(step(1, { swapIns: [{ ...out, blockIds: [5, 6] }] }));
    for (let l = 0; l < 2; l++)
      for (let h = 0; h < 2; h++)
        for (let t = 0; t < out.numTokens; t++)
          for (let d = 0; d < MODEL.headDim; d++)
            expect(cacheElement(cache, [5, 6], l, 0, h, t, d)).toBe(
              cacheElement(cache, out.blockIds, l, 0, h, t, d),
            );
    expect(actor.counters.numPuts).toBe(1);
    expect(actor.counters.numCopiesOut).toBe(0);
    const boxBytes = 2 * 2 * 2 * out.numTokens * MODEL.headDim * 2;
    expect(counts).toEqual({ posted: boxBytes, received: boxBytes });
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
