import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { HostKvStore, hostKvLayoutFor, KV_STORE_INBOUND_TAGS, KvStoreActor } from '@seesaw/kv-store';
import { Checkpoint, type ModelConfig } from '@seesaw/model';
import { type StepBatch, type StepKvSwap, type StepResult, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeStep, GREEDY } from '../test/tiered-kv-test-steps.ts';
import { CpuDevice } from './cpu-device.ts';
import { KvStoreSwapper } from './device-kv-store-swap.ts';
import { seqIdsTouchedBy } from './kv-prefetch-table.ts';
import { openKvStoreLink } from './kv-store-link.ts';
import { StepKvWriteBacks } from './step-kv-write-backs.ts';

// Tiered KV on one in-process device: a prompt's KV is written back to host slots layer by layer
// during its prefill, its blocks are overwritten by another sequence, and a later step prefetches
// it into other blocks; the decode after that must match a sequence that never left the device,
// bit for bit (same kernels, same data, only the block ids differ).

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const TOKEN = 'tiered-kv-test';
const BLOCK_SIZE = 8;
const NUM_BLOCKS = 12;
const NUM_SLOTS = 8;
const PROMPT = 20; // 3 blocks, the last one partial

let config: ModelConfig;
beforeAll(() => {
  const checkpoint = Checkpoint.open(FIXTURE);
  config = checkpoint.config;
  checkpoint.close();
});

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function kvBytes(numBlocks: number): number {
  return numBlocks * config.numLayers * 2 * BLOCK_SIZE * config.numKvHeads * config.headDim * 4;
}

function tokens(count: number, offset: number): number[] {
  return Array.from({ length: count }, (_, i) => 3 + ((i * 37 + offset * 101) % (config.vocabSize - 3)));
}

const OLD_BLOCKS = [5, 2, 7];
const NEW_BLOCKS = [0, 9, 4];
const SLOTS = [6, 1, 3];
const moved: StepKvSwap = { seqId: 1, blockIds: OLD_BLOCKS, slotIds: SLOTS, numTokens: PROMPT };

function prefill(stepId: number): StepBatch {
  return {
    stepId,
    addedSeqs: [{ seqId: 1, sampling: GREEDY }],
    releasedSeqIds: [],
    seqs: [
      {
        seqId: 1,
        tokenIds: tokens(PROMPT, 1),
        startPos: 0,
        blockTable: OLD_BLOCKS,
        isSampled: true,
        outputIndex: 0,
      },
    ],
  };
}

/** Another prompt over every block sequence 1 had (it is parked: released on the device). */
function overwrite(stepId: number): StepBatch {
  return {
    stepId,
    addedSeqs: [{ seqId: 2, sampling: GREEDY }],
    releasedSeqIds: [1],
    seqs: [
      {
        seqId: 2,
        tokenIds: tokens(24, 2),
        startPos: 0,
        blockTable: [7, 5, 2],
        isSampled: true,
        outputIndex: 0,
      },
    ],
  };
}

/** Prefill, then three decode steps, never moved: the tokens and logits to match. */
async function reference(): Promise<StepResult[]> {
  const device = await CpuDevice.load(FIXTURE, { blockSize: BLOCK_SIZE, kvCacheBytes: kvBytes(NUM_BLOCKS) });
  const results = [await device.execute(prefill(0))];
  for (let i = 1; i <= 3; i++) {
    const token = results[i - 1]!.sampled[0]!.tokenId;
    results.push(await device.execute(decodeStep(i, PROMPT, token, i, OLD_BLOCKS)));
  }
  device.close();
  return results;
}

/** Runs one step the way a device worker does: swaps and prefetches first, write-backs per layer. */
async function runLikeWorker(device: CpuDevice, swapper: KvStoreSwapper, batch: StepBatch) {
  const { waitedMs, numAwaited } = await swapper.waitForPrefetches(seqIdsTouchedBy(batch));
  swapper.startPrefetches(batch);
  const writeBacks = swapper.startWriteBacks(batch);
  const { kvWriteBacks: _w, prefetches: _p, ...step } = batch;
  const result = (await device.executeStage(step, undefined, writeBacks?.onLayerKvWritten)) as StepResult;
  const written = await writeBacks?.finish();
  return { result, waitedMs, numAwaited, written };
}

function expectSaneTimings(result: StepResult): void {
  const timings = result.kvTimings;
  expect(timings).toBeDefined();
  for (const value of Object.values(timings!)) {
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeGreaterThanOrEqual(0);
  }
  expect(timings!.computeMs).toBeGreaterThan(0);
}

describe('tiered KV on an in-process CpuDevice with a host store', () => {
  /** A device of NUM_BLOCKS blocks whose host KV tier is an in-process store of NUM_SLOTS slots. */
  async function loadWithHostStore() {
    const store = new HostKvStore({
      layout: hostKvLayoutFor(config, BLOCK_SIZE),
      capacityBytes: kvBytes(NUM_SLOTS),
    });
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
      hostKv: store,
    });
    return { store, device };
  }

  it('writes a prompt back during prefill and prefetches it into new blocks: decode unchanged', async () => {
    const expected = await reference();
    const { store, device } = await loadWithHostStore();
    const first = await device.execute({ ...prefill(0), kvWriteBacks: [moved] });
    expect(first.sampled).toEqual(expected[0]!.sampled);
    expectSaneTimings(first);
    // Every layer and KV head of the 20 tokens is in the named slots; the store's own allocator is untouched.
    const box = {
      seqId: 1,
      layers: { start: 0, end: config.numLayers },
      heads: { start: 0, end: config.numKvHeads },
    };
    expect(store.get({ ...box, tokens: { start: 0, end: PROMPT }, slotIds: SLOTS }).ok).toBe(true);
    expect(store.get({ ...box, tokens: { start: 0, end: PROMPT + 1 }, slotIds: SLOTS }).ok).toBe(false);
    expect(store.numFreeSlots).toBe(store.numSlots);

    const prefetch = { ...moved, blockIds: NEW_BLOCKS };
    expectSaneTimings(await device.execute({ ...overwrite(1), prefetches: [prefetch] }));
    let token = first.sampled[0]!.tokenId;
    for (let i = 1; i <= 3; i++) {
      const step = decodeStep(i + 1, PROMPT, token, i, NEW_BLOCKS);
      if (i === 1) step.addedSeqs = [{ seqId: 1, sampling: GREEDY }];
      const result = await device.execute(step);
      expect(result.sampled).toEqual(expected[i]!.sampled);
      expect(result.logits![0]).toEqual(expected[i]!.logits![0]);
      token = result.sampled[0]!.tokenId;
    }
    device.close();
  });

  it('fails a write-back to a slot outside the store, or a prefetch of slots never written', async () => {
    const { device } = await loadWithHostStore();
    await expect(
      device.execute({ ...prefill(0), kvWriteBacks: [{ ...moved, slotIds: [6, NUM_SLOTS, 3] }] }),
    ).rejects.toThrow(/write-back of sequence 1: slot 8 is not one of the store's 8 slots/);
    await expect(
      device.execute({ ...overwrite(1), prefetches: [{ ...moved, blockIds: NEW_BLOCKS }] }),
    ).rejects.toThrow(/prefetch of sequence 1: .*never written/);
    await expect(
      device.execute({ ...overwrite(2), prefetches: [{ ...moved, blockIds: [0, NUM_BLOCKS, 4] }] }),
    ).rejects.toThrow(/prefetch of sequence 1: block 12 is outside the cache's 12 blocks/);
    const bare = await CpuDevice.load(FIXTURE, { blockSize: BLOCK_SIZE, kvCacheBytes: kvBytes(NUM_BLOCKS) });
    await expect(bare.execute({ ...prefill(0), kvWriteBacks: [moved] })).rejects.toThrow(/no host KV store/);
    device.close();
    bare.close();
  });
});

describe('tiered KV through the kv-store actor (KvStoreSwapper)', () => {
  /**
   * `traffic` lists, in order, the requests the swapper sent the store ("kvGet 1": tag and
   * sequence, "prefetch" when marked as one) and the store's answers ("answer").
   */
  async function connect(device: CpuDevice) {
    const store = new HostKvStore({
      layout: hostKvLayoutFor(config, BLOCK_SIZE),
      capacityBytes: kvBytes(NUM_SLOTS),
    });
    const actor = new KvStoreActor(store, { name: 'test kv-store', token: TOKEN, log: () => {} });
    const { port1, port2 } = new MessageChannel();
    void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
    const link = await openKvStoreLink(port2, { deviceName: 'test device', token: TOKEN });
    const traffic: string[] = [];
    const post = link.post.bind(link);
    link.post = (message, tensors) => {
      if ('seqId' in message)
        traffic.push(
          `${message.tag} ${message.seqId}${'isPrefetch' in message && message.isPrefetch ? ' prefetch' : ''}`,
        );
      post(message, tensors);
    };
    const onMessage = link.onMessage.bind(link);
    link.onMessage = (handler) =>
      onMessage((message, tensors) => {
        traffic.push('answer');
        handler(message, tensors);
      });
    const whole = { start: 0, end: config.numLayers };
    const swapper = new KvStoreSwapper(link, device.kvCache, whole, { start: 0, end: config.numKvHeads });
    closers.push(() => swapper.close('test done'));
    return { store, actor, swapper, traffic };
  }

  it("posts a step's prefetches only once its swap-ins are answered (the store copies in arrival order)", async () => {
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
    });
    const { swapper, traffic } = await connect(device);
    // Sequences 1 and 2 written back; then one step swaps 1 in and prefetches 2.
    await runLikeWorker(device, swapper, { ...prefill(0), kvWriteBacks: [moved] });
    const second: StepKvSwap = { seqId: 2, blockIds: [7, 5, 2], slotIds: [0, 2, 4], numTokens: 24 };
    await runLikeWorker(device, swapper, { ...overwrite(1), kvWriteBacks: [second] });
    traffic.length = 0;
    await swapper.applyThenPrefetch({
      ...overwrite(2),
      swapIns: [{ ...moved, blockIds: NEW_BLOCKS }],
      prefetches: [{ ...second, blockIds: [1, 8, 10] }],
    });
    // Only the prefetch is marked: the store may serve other devices' swaps before it.
    expect(traffic).toEqual(['kvGet 1', 'answer', 'kvGet 2 prefetch']);
    expect((await swapper.waitForPrefetches([2])).numAwaited).toBe(1);
    // A malformed prefetch is refused by name (nothing issued); a failed swap-in names the swap.
    await expect(
      swapper.applyThenPrefetch({
        ...overwrite(3),
        prefetches: [{ ...second, blockIds: [1, NUM_BLOCKS, 10] }],
      }),
    ).rejects.toThrow(/tiered KV failed: prefetch of sequence 2: block 12 is outside/);
    await expect(
      swapper.applyThenPrefetch({ ...overwrite(4), swapIns: [{ ...moved, slotIds: [6, 1, 5] }] }),
    ).rejects.toThrow(/KV swap failed: swap-in of sequence 1/);
    device.close();
  });

  it('puts one message per layer and sequence, prefetches without blocking, decodes unchanged', async () => {
    const expected = await reference();
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
    });
    const { actor, swapper } = await connect(device);
    const first = await runLikeWorker(device, swapper, { ...prefill(0), kvWriteBacks: [moved] });
    expect(first.result.sampled).toEqual(expected[0]!.sampled);
    expect(actor.counters.numPuts).toBe(config.numLayers);
    expect(first.written!.writeBackMs).toBeGreaterThanOrEqual(0);
    expect(first.written!.writeBackWaitMs).toBeGreaterThanOrEqual(0);

    // The prefetching step does not wait for its own prefetch; the next step touching seq 1 does.
    const second = await runLikeWorker(device, swapper, {
      ...overwrite(1),
      prefetches: [{ ...moved, blockIds: NEW_BLOCKS }],
    });
    expect(second.numAwaited).toBe(0);
    let token = first.result.sampled[0]!.tokenId;
    for (let i = 1; i <= 3; i++) {
      const step = decodeStep(i + 1, PROMPT, token, i, NEW_BLOCKS);
      if (i === 1) step.addedSeqs = [{ seqId: 1, sampling: GREEDY }];
      const { result, numAwaited } = await runLikeWorker(device, swapper, step);
      expect(numAwaited).toBe(i === 1 ? 1 : 0);
      expect(result.sampled).toEqual(expected[i]!.sampled);
      expect(result.logits![0]).toEqual(expected[i]!.logits![0]);
      token = result.sampled[0]!.tokenId;
    }
    expect(actor.counters.numGets).toBe(1);
    expect(swapper.takeCompletedPrefetchMs()).toBeGreaterThan(0);

    // flush() waits for puts nobody awaited (an earlier pipeline stage's write-backs before a re-shard).
    const unawaited = swapper.startWriteBacks({
      ...prefill(9),
      kvWriteBacks: [{ ...moved, slotIds: [2, 4, 5] }],
    })!;
    for (let layer = 0; layer < config.numLayers; layer++) unawaited.onLayerKvWritten(layer);
    let isFlushed = false;
    const flushed = swapper.flush().then(() => {
      isFlushed = true;
    });
    expect(isFlushed).toBe(false);
    await flushed;
    expect(actor.counters.numPuts).toBe(2 * config.numLayers);
    device.close();
  });

  it('reports a store failure as the step error: write-back slot out of range, prefetch never written', async () => {
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
    });
    const { swapper } = await connect(device);
    await expect(
      runLikeWorker(device, swapper, { ...prefill(0), kvWriteBacks: [{ ...moved, slotIds: [6, 99, 3] }] }),
    ).rejects.toThrow(/write-back of sequence 1: kv-store: slot 99 is not one of the store's 8 slots/);
    await swapper.flush();
    // A failed prefetch fails the step that needs the sequence, not the one that started it.
    await runLikeWorker(device, swapper, {
      ...overwrite(1),
      prefetches: [{ ...moved, blockIds: NEW_BLOCKS }],
    });
    await expect(runLikeWorker(device, swapper, decodeStep(2, PROMPT, 5, 1, NEW_BLOCKS))).rejects.toThrow(
      /prefetch of sequence 1: kv-store: .*never written/,
    );
    expect(() =>
      swapper.startWriteBacks({ ...prefill(3), kvWriteBacks: [{ ...moved, blockIds: [5, 2] }] }),
    ).toThrow(/write-back of sequence 1: 20 tokens need 3 blocks and slots, got 2 and 3/);
    device.close();
  });
});

describe('StepKvWriteBacks', () => {
  it('posts each layer as soon as the forward pass wrote it, before the next layer runs', async () => {
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
    });
    const cache = device.kvCache;
    const firstBlock = OLD_BLOCKS[0]!;
    const blockFloats = cache.layout.numKvHeads * BLOCK_SIZE * cache.layout.headDim;
    const isWritten = (layer: number) =>
      cache.keys[layer]!.subarray(firstBlock * blockFloats, (firstBlock + 1) * blockFloats).some(
        (x) => x !== 0,
      );
    const posted: Array<{ layer: number; isNextWritten: boolean; tensor: Float32Array }> = [];
    const writeBacks = new StepKvWriteBacks(cache, [moved], async (_swap, layer, tensor) => {
      posted.push({
        layer,
        isNextWritten: layer + 1 < config.numLayers && isWritten(layer + 1),
        tensor: tensor.data as Float32Array,
      });
    });
    await device.executeStage(prefill(0), undefined, writeBacks.onLayerKvWritten);
    const { writeBackMs, writeBackWaitMs } = await writeBacks.finish();
    expect(writeBackMs).toBeGreaterThanOrEqual(0);
    expect(writeBackWaitMs).toBeGreaterThanOrEqual(0);
    expect(posted.map((p) => p.layer)).toEqual([0, 1, 2, 3]);
    expect(posted.some((p) => p.isNextWritten)).toBe(false);
    // What was posted for layer l is exactly that layer's final K then V of the 20 tokens, head-major.
    const { numKvHeads: H, headDim: D } = cache.layout;
    for (const { layer, tensor } of posted) {
      expect(tensor.length).toBe(2 * H * PROMPT * D);
      let i = 0;
      for (const array of [cache.keys[layer]!, cache.values[layer]!])
        for (let h = 0; h < H; h++)
          for (let t = 0; t < PROMPT; t++)
            for (let d = 0; d < D; d++) {
              const block = OLD_BLOCKS[Math.floor(t / BLOCK_SIZE)]!;
              expect(tensor[i++]).toBe(array[((block * H + h) * BLOCK_SIZE + (t % BLOCK_SIZE)) * D + d]);
            }
    }
    device.close();
  });

  it('posts every layer from finish() when the step computed none, and rejects with a failed put', async () => {
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
    });
    const layers: number[] = [];
    const failing = new StepKvWriteBacks(device.kvCache, [moved], async (_swap, layer) => {
      layers.push(layer);
      if (layer === 2) throw new Error('store full');
    });
    await expect(failing.finish()).rejects.toThrow(/store full/);
    expect(layers).toEqual([0, 1, 2, 3]);
    await failing.settled();
    expect(
      () => new StepKvWriteBacks(device.kvCache, [{ ...moved, blockIds: [5, 2, 12] }], async () => {}),
    ).toThrow(/write-back of sequence 1: block 12 is outside the cache's 12 blocks/);
    device.close();
  });
});
