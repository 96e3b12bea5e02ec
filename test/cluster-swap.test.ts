/**
 * Preemption by swap in a local cluster: device workers too small for the workload, a kv-store
 * worker as the host KV tier, preemptionMode 'swap'. Every preemption must be a swap (each rank
 * moving its layers x KV heads through the store, with the scheduler's slot ids), no token is
 * recomputed, and every request's tokens equal those of one in-process device with ample memory.
 */
import {
  ClusterEngine,
  DEFAULT_SAMPLING,
  DeviceStepError,
  type EngineRequest,
  type RequestOutput,
} from '@seesaw/coordinator';
import { shardWeightBytes } from '@seesaw/gpu-actor';
import { Checkpoint, loadModelConfig, parseParallelConfig, shardSpec } from '@seesaw/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ENGINE_OPTIONS, FIXTURE, runReference, startCluster } from './cluster-test-support.ts';

/** KV blocks each replica gets: the longest request (71 tokens) fits, all of them do not. */
const BLOCKS_PER_ENGINE = 10;
/** Host slots each replica's engine may swap to: more than all its requests together ever need. */
const HOST_SLOTS_PER_ENGINE = 64;

/** Device memory leaving every device at least BLOCKS_PER_ENGINE KV blocks, the fullest exactly that. */
function deviceMemoryFor(parallel: string): { deviceMemoryBytes: number; slotBytes: number } {
  const { tp, pp } = parseParallelConfig(parallel);
  const checkpoint = Checkpoint.open(FIXTURE);
  try {
    const config = checkpoint.config;
    let deviceMemoryBytes = 0;
    for (let ppStage = 0; ppStage < pp; ppStage++) {
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const spec = shardSpec(config, { tp, tpRank, pp, ppStage });
        const layers = spec.layers.end - spec.layers.start;
        const heads = spec.kvHeads.end - spec.kvHeads.start;
        const bytesPerBlock = layers * 2 * heads * BLOCK_SIZE * config.headDim * 4;
        const need = shardWeightBytes(checkpoint, spec) + BLOCKS_PER_ENGINE * bytesPerBlock;
        deviceMemoryBytes = Math.max(deviceMemoryBytes, need);
      }
    }
    const slotBytes = config.numLayers * 2 * config.numKvHeads * BLOCK_SIZE * config.headDim * 4;
    return { deviceMemoryBytes, slotBytes };
  } finally {
    checkpoint.close();
  }
}

/** Twelve requests, prompts 3 to 47 tokens, 4 to 23 output tokens; every third one sampled with a seed. */
function makeRequests(vocabSize: number, seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: 12 }, (_, i) => ({
    requestId: `s${i}`,
    promptTokenIds: Array.from({ length: 3 + next(45) }, () => 3 + next(vocabSize - 3)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 4 + next(20),
      temperature: i % 3 === 0 ? 0.9 : 0,
      topK: i % 3 === 0 ? 40 : 0,
      topP: i % 3 === 0 ? 0.95 : 1,
      seed: 3000 + i,
      ignoreEos: i % 2 === 0,
    },
  }));
}

function numModelParams(): number {
  const checkpoint = Checkpoint.open(FIXTURE);
  try {
    return checkpoint
      .names()
      .reduce((sum, name) => sum + checkpoint.info(name).shape.reduce((a, b) => a * b, 1), 0);
  } finally {
    checkpoint.close();
  }
}

async function runWithSwap(parallel: string, requests: EngineRequest[]) {
  const { dp, pp } = parseParallelConfig(parallel);
  const { deviceMemoryBytes, slotBytes } = deviceMemoryFor(parallel);
  const cluster = await startCluster(FIXTURE, parallel, {
    deviceMemoryBytes,
    hostKvBytes: HOST_SLOTS_PER_ENGINE * dp * slotBytes,
  });
  try {
    for (const replica of cluster.replicas) expect(replica.numKvBlocks).toBe(BLOCKS_PER_ENGINE);
    expect(cluster.engineHostKv).toEqual({ numSlots: HOST_SLOTS_PER_ENGINE, slotBytes });
    const engine = new ClusterEngine(cluster.replicas, pp, {
      ...ENGINE_OPTIONS,
      maxModelLen: cluster.config.maxPositionEmbeddings,
      eosTokenIds: cluster.config.eosTokenIds,
      hostKv: cluster.engineHostKv,
      preemptionMode: 'swap',
      numModelParams: numModelParams(),
    });
    for (const request of requests) engine.addRequest(request);
    const finished: RequestOutput[] = [];
    const stats = await engine.run((output) => finished.push(output));
    return { outputs: new Map(finished.map((o) => [o.requestId, o.outputTokenIds])), stats };
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}

describe('preemption by swap through the host kv-store in a LocalCluster', () => {
  const requests = makeRequests(loadModelConfig(FIXTURE).vocabSize, 17);
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
  });

  for (const parallel of ['D1T1P1', 'D1T2P1', 'D1T1P2', 'D2T1P1']) {
    it(`${parallel}: swaps instead of recomputing, same tokens as one device`, async () => {
      const { outputs, stats } = await runWithSwap(parallel, requests);
      expect(stats.numSwapOuts).toBeGreaterThan(0);
      expect(stats.numSwapIns).toBe(stats.numSwapOuts);
      expect(stats.numPreemptions).toBe(stats.numSwapOuts);
      expect(stats.numRecomputedTokens).toBe(0);
      expect(outputs.size).toBe(requests.length);
      for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
    }, 40_000);
  }

  it('fails the step with a clear device error when the store cannot serve a swap', async () => {
    const { slotBytes } = deviceMemoryFor('T2');
    const cluster = await startCluster(FIXTURE, 'T2', { hostKvBytes: 8 * slotBytes });
    try {
      const swapIn = { seqId: 0, blockIds: [0], slotIds: [3], numTokens: 4 };
      const step = { stepId: 0, addedSeqs: [], releasedSeqIds: [], seqs: [], swapIns: [swapIn] };
      const failure = await cluster.replicas[0]!.execute(step).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(DeviceStepError);
      expect((failure as Error).message).toMatch(
        /stepFailed in step 0: step 0: KV swap failed: swap-in of sequence 0: kv-store: .*never written/,
      );
    } finally {
      await cluster.close({ mode: 'abort' });
    }
  }, 20_000);
});
