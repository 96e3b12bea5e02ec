import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../../test/hashing-test-device.ts';
import { Engine } from '../engine.ts';
import type { EngineRequest } from '../request.ts';
import { DEFAULT_SAMPLING } from '../sampling-params.ts';
import { ClusterEngine } from './cluster-engine.ts';
import { partitionReplica } from './kv-partition-view.ts';

const BLOCK_SIZE = 4;
const VOCAB = 1000;
const OPTIONS = { maxModelLen: 256, eosTokenIds: [7], maxNumBatchedTokens: 24, maxNumSeqs: 6 };

function makeRequests(count: number, seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: count }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length: 1 + next(40) }, () => 10 + next(VOCAB - 10)),
    sampling: { ...DEFAULT_SAMPLING, maxTokens: 1 + next(20), temperature: i % 3 === 0 ? 0.7 : 0, seed: i },
  }));
}

async function runSingle(requests: EngineRequest[]): Promise<Map<string, number[]>> {
  const device = new HashingTestDevice({ numKvBlocks: 400, blockSize: BLOCK_SIZE, vocabSize: VOCAB });
  const engine = new Engine(device, OPTIONS);
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, number[]>();
  await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
  return outputs;
}

describe('ClusterEngine', () => {
  it.each([
    [1, 1],
    [2, 1],
    [1, 3],
    [2, 2],
  ])('with %i replicas x %i virtual engines gives the single engine outputs', async (dp, pp) => {
    const requests = makeRequests(30, dp * 10 + pp);
    const expected = await runSingle(requests);
    const batches: StepBatch[][] = [];
    // Few blocks per partition, so partitions preempt; the hashing device reads every token back
    // through the block tables, so partitions trampling each other's blocks change the outputs.
    const replicas = Array.from({ length: dp }, (_, r) => {
      batches.push([]);
      return new HashingTestDevice({
        numKvBlocks: 40 * pp + 1,
        blockSize: BLOCK_SIZE,
        vocabSize: VOCAB,
        onBatch: (batch) => batches[r].push(batch),
      });
    });
    const engine = new ClusterEngine(replicas, pp, OPTIONS);
    for (const request of requests) engine.addRequest(request);
    const outputs = new Map<string, number[]>();
    const stats = await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
    expect(outputs).toEqual(expected);
    expect(stats.numFinishedRequests).toBe(requests.length);
    expect(stats.numOutputTokens).toBe([...expected.values()].reduce((sum, t) => sum + t.length, 0));
    for (const e of engine.engines) expect(e.stats.numFinishedRequests).toBeGreaterThan(0);
    for (const replicaBatches of batches) {
      const stepIds = replicaBatches.map((b) => b.stepId);
      expect(new Set(stepIds).size).toBe(stepIds.length);
    }
    if (pp > 1) expect(stats.numPreemptions).toBeGreaterThan(0);
  });

  it('spreads requests to the engine with the fewest outstanding tokens', () => {
    const replicas = [new HashingTestDevice({ numKvBlocks: 100, blockSize: BLOCK_SIZE, vocabSize: VOCAB })];
    const engine = new ClusterEngine(replicas, 2, OPTIONS);
    const request = (id: string, promptLength: number, maxTokens: number): EngineRequest => ({
      requestId: id,
      promptTokenIds: Array.from({ length: promptLength }, () => 11),
      sampling: { ...DEFAULT_SAMPLING, maxTokens },
    });
    engine.addRequest(request('big', 30, 10)); // engine 0: 40
    engine.addRequest(request('a', 5, 5)); // engine 1: 10
    engine.addRequest(request('b', 5, 5)); // engine 1: 20
    engine.addRequest(request('c', 20, 5)); // engine 1: 45
    engine.addRequest(request('d', 1, 1)); // engine 0: 42
    expect(engine.engines.map((e) => e.scheduler.numWaiting)).toEqual([2, 3]);
  });

  it('stops with the first device failure, and keeps throwing it', async () => {
    const device = new HashingTestDevice({ numKvBlocks: 100, blockSize: BLOCK_SIZE, vocabSize: VOCAB });
    const lost = new Error('device 0 lost: worker exited');
    let numSteps = 0;
    const failing = {
      numKvBlocks: device.numKvBlocks,
      blockSize: device.blockSize,
      execute: (batch: StepBatch) => (++numSteps === 3 ? Promise.reject(lost) : device.execute(batch)),
    };
    const engine = new ClusterEngine([failing], 2, OPTIONS);
    for (const request of makeRequests(6, 1)) engine.addRequest(request);
    await expect(engine.run()).rejects.toBe(lost);
    await expect(engine.step()).rejects.toBe(lost);
  });
});

describe('KvPartitionView', () => {
  it('gives each partition disjoint block, sequence and step ids and maps answers back', async () => {
    const seen: StepBatch[] = [];
    const device = new HashingTestDevice({
      numKvBlocks: 31,
      blockSize: BLOCK_SIZE,
      vocabSize: VOCAB,
      onBatch: (b) => seen.push(b),
    });
    const views = partitionReplica(device, 3);
    expect(views.map((v) => v.numKvBlocks)).toEqual([10, 10, 10]);
    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    for (const [p, view] of views.entries()) {
      const result = await view.execute({
        stepId: 0,
        addedSeqs: [{ seqId: 4, sampling: greedy }],
        releasedSeqIds: [],
        seqs: [
          {
            seqId: 4,
            tokenIds: [11, 12, 13, 14, 15],
            startPos: 0,
            blockTable: [0, 9],
            isSampled: true,
            outputIndex: 0,
          },
        ],
      });
      expect(result.stepId).toBe(0);
      expect(result.sampled.map((s) => s.seqId)).toEqual([4]);
      const sent = seen[p];
      expect(sent.stepId).toBe(p);
      expect(sent.addedSeqs[0].seqId).toBe(4 * 3 + p);
      expect(sent.seqs[0].blockTable).toEqual([10 * p, 10 * p + 9]);
    }
    await views[2].execute({ stepId: 1, addedSeqs: [], releasedSeqIds: [4], seqs: [] });
    expect(seen[3]).toMatchObject({ stepId: 3, releasedSeqIds: [4 * 3 + 2] });
    expect(() => partitionReplica(device, 32)).toThrow(/31 KV blocks cannot be split into 32 partitions/);
  });

  it('renumbers the blocks and sequences of KV swaps, keeping host slot ids', async () => {
    const sent: StepBatch[] = [];
    const recording = {
      numKvBlocks: 20,
      blockSize: BLOCK_SIZE,
      execute: async (batch: StepBatch) => {
        sent.push(batch);
        return { stepId: batch.stepId, sampled: [] };
      },
    };
    const [, second] = partitionReplica(recording, 2);
    await second.execute({
      stepId: 5,
      addedSeqs: [],
      releasedSeqIds: [],
      seqs: [],
      swapOuts: [{ seqId: 2, blockIds: [0, 3], slotIds: [7, 8], numTokens: 6 }],
      swapIns: [{ seqId: 1, blockIds: [9], slotIds: [4], numTokens: 3 }],
    });
    expect(sent[0].swapOuts).toEqual([{ seqId: 5, blockIds: [10, 13], slotIds: [7, 8], numTokens: 6 }]);
    expect(sent[0].swapIns).toEqual([{ seqId: 3, blockIds: [19], slotIds: [4], numTokens: 3 }]);
  });

  it('gives every engine of the host its own range of host slots', async () => {
    const sent: StepBatch[] = [];
    const recording = {
      numKvBlocks: 20,
      blockSize: BLOCK_SIZE,
      execute: async (batch: StepBatch) => {
        sent.push(batch);
        return { stepId: batch.stepId, sampled: [] };
      },
    };
    // Replica 1 of a dp 2 x pp 2 host: its views are engines 2 and 3, 10 slots each.
    const views = partitionReplica(recording, 2, { numSlotsPerPartition: 10, firstPartition: 2 });
    const swap = { seqId: 0, blockIds: [0], slotIds: [0, 9], numTokens: 9 };
    for (const view of views)
      await view.execute({ stepId: 0, addedSeqs: [], releasedSeqIds: [], seqs: [], swapOuts: [swap] });
    expect(sent.map((batch) => batch.swapOuts?.[0]?.slotIds)).toEqual([
      [20, 29],
      [30, 39],
    ]);
    await expect(
      views[0]!.execute({
        stepId: 1,
        addedSeqs: [],
        releasedSeqIds: [],
        seqs: [],
        swapIns: [{ ...swap, slotIds: [10] }],
      }),
    ).rejects.toThrow(/host slot 10 is outside this engine's 10 slots/);
  });
});
