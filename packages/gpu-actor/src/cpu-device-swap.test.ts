import { join } from 'node:path';
import { HostKvStore, hostKvLayoutFor } from '@seesaw/kv-store';
import { Checkpoint, type ModelConfig } from '@seesaw/model';
import type { DeviceSamplingParams, StepBatch } from '@seesaw/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { CpuDevice } from './cpu-device.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const BLOCK_SIZE = 8;
const NUM_BLOCKS = 12;
const GREEDY: DeviceSamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };

let config: ModelConfig;
beforeAll(() => {
  const checkpoint = Checkpoint.open(FIXTURE);
  config = checkpoint.config;
  checkpoint.close();
});

function kvBytes(numBlocks: number): number {
  return numBlocks * config.numLayers * 2 * BLOCK_SIZE * config.numKvHeads * config.headDim * 4;
}

function makeStore(numSlots: number): HostKvStore {
  return new HostKvStore({ layout: hostKvLayoutFor(config, BLOCK_SIZE), capacityBytes: kvBytes(numSlots) });
}

function tokens(count: number, offset: number): number[] {
  return Array.from({ length: count }, (_, i) => 3 + ((i * 37 + offset * 101) % (config.vocabSize - 3)));
}

const PROMPT = 20; // 3 blocks, the last one partial

function prefill(stepId: number, blockTable: number[]): StepBatch {
  return {
    stepId,
    addedSeqs: [{ seqId: 1, sampling: GREEDY }],
    releasedSeqIds: [],
    seqs: [
      { seqId: 1, tokenIds: tokens(PROMPT, 1), startPos: 0, blockTable, isSampled: true, outputIndex: 0 },
    ],
  };
}

function decode(stepId: number, token: number, blockTable: number[]): StepBatch {
  return {
    stepId,
    addedSeqs: [],
    releasedSeqIds: [],
    isLogitsReturned: true,
    seqs: [{ seqId: 1, tokenIds: [token], startPos: PROMPT, blockTable, isSampled: true, outputIndex: 1 }],
  };
}

describe('CpuDevice swaps KV through a host store', () => {
  it('continues a swapped-out and swapped-in sequence exactly as if it never left', async () => {
    // Reference: prefill, then one decode, never moved.
    const plain = await CpuDevice.load(FIXTURE, { blockSize: BLOCK_SIZE, kvCacheBytes: kvBytes(NUM_BLOCKS) });
    const first = (await plain.execute(prefill(0, [5, 2, 7]))).sampled[0]!.tokenId;
    const expected = await plain.execute(decode(1, first, [5, 2, 7]));
    plain.close();

    const store = makeStore(4);
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
      hostKv: store,
    });
    expect((await device.execute(prefill(0, [5, 2, 7]))).sampled[0]!.tokenId).toBe(first);
    // Swap out, and in the same step let another sequence overwrite every block it had.
    const swapOut = { seqId: 1, blockIds: [5, 2, 7], slotIds: [0, 1, 2], numTokens: PROMPT };
    await device.execute({
      stepId: 1,
      addedSeqs: [{ seqId: 2, sampling: GREEDY }],
      releasedSeqIds: [1],
      swapOuts: [swapOut],
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
    });
    expect(store.allocator.slotsOf(1)).toEqual([0, 1, 2]);
    // Back into different blocks; the sampler learns the sequence again.
    const swapIn = { seqId: 1, blockIds: [0, 9, 4], slotIds: [0, 1, 2], numTokens: PROMPT };
    const resumed = await device.execute({
      ...decode(2, first, [0, 9, 4]),
      addedSeqs: [{ seqId: 1, sampling: GREEDY }],
      releasedSeqIds: [2],
      swapIns: [swapIn],
    });
    expect(resumed.sampled).toEqual(expected.sampled);
    expect(resumed.logits![0]).toEqual(expected.logits![0]);
    expect(store.numFreeSlots).toBe(store.numSlots);
    device.close();
  });

  it('fails a swap without a store, with a mismatched store, or with slots the store did not give', async () => {
    const bare = await CpuDevice.load(FIXTURE, { blockSize: BLOCK_SIZE, kvCacheBytes: kvBytes(NUM_BLOCKS) });
    await bare.execute(prefill(0, [5, 2, 7]));
    const swapOut = { seqId: 1, blockIds: [5, 2, 7], slotIds: [0, 1, 2], numTokens: PROMPT };
    const outOnly: StepBatch = {
      stepId: 1,
      addedSeqs: [],
      releasedSeqIds: [1],
      seqs: [],
      swapOuts: [swapOut],
    };
    await expect(bare.execute(outOnly)).rejects.toThrow(/no host KV store/);

    const wrongSlots = new HostKvStore({
      layout: hostKvLayoutFor(config, BLOCK_SIZE * 2),
      capacityBytes: kvBytes(8),
    });
    await expect(
      CpuDevice.load(FIXTURE, {
        blockSize: BLOCK_SIZE,
        kvCacheBytes: kvBytes(NUM_BLOCKS),
        hostKv: wrongSlots,
      }),
    ).rejects.toThrow(/16-token f32 slots; device needs .* 8-token f32 slots/);

    const store = makeStore(4);
    const device = await CpuDevice.load(FIXTURE, {
      blockSize: BLOCK_SIZE,
      kvCacheBytes: kvBytes(NUM_BLOCKS),
      hostKv: store,
    });
    await device.execute(prefill(0, [5, 2, 7]));
    await expect(
      device.execute({ ...outOnly, swapOuts: [{ ...swapOut, slotIds: [3, 1, 2] }] }),
    ).rejects.toThrow(/host store gave slots \[0,1,2\], coordinator planned \[3,1,2\]/);
    expect(store.numFreeSlots).toBe(4); // nothing kept from the failed swap
    await expect(device.execute({ ...outOnly, swapOuts: [{ ...swapOut, numTokens: 30 }] })).rejects.toThrow(
      /30 tokens need 4 blocks/,
    );
    device.close();
  });
});
