import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../../test/hashing-test-device.ts';
import { Engine } from '../engine.ts';
import type { EngineRequest } from '../request.ts';
import { DEFAULT_SAMPLING } from '../sampling-params.ts';
import { ClusterEngine } from './cluster-engine.ts';

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
  ])('with %i replicas x pp %i (steps in flight) gives the single engine outputs', async (dp, pp) => {
    const requests = makeRequests(30, dp * 10 + pp);
    const expected = await runSingle(requests);
    const batches: StepBatch[][] = [];
    // Few blocks, so replicas preempt with steps in flight; the hashing device reads every token
    // back through the block tables, so steps in flight trampling each other's blocks change the outputs.
    const replicas = Array.from({ length: dp }, (_, r) => {
      batches.push([]);
      return new HashingTestDevice({
        numKvBlocks: 25,
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

  it('spreads requests to the replica with the fewest outstanding tokens', () => {
    const replicas = [0, 1].map(
      () => new HashingTestDevice({ numKvBlocks: 100, blockSize: BLOCK_SIZE, vocabSize: VOCAB }),
    );
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
