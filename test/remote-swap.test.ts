/**
 * Preemption by swap on a multi-host job: two in-process host agents with one device each, a job
 * with hostKvBytes and preemptionMode 'swap', device memory too small for the workload. Each
 * host runs its own kv-store for the job; every preemption must be a swap, no token recomputed,
 * and every request's tokens equal those of one in-process device with ample memory. P2 spans
 * both hosts, so each stage swaps its layers through its own host's store under the same slot ids.
 */
import {
  CoordinatorDaemon,
  DEFAULT_SAMPLING,
  type EngineRequest,
  type EngineStats,
  HostAgent,
  RemoteJobClient,
  type RequestOutput,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl, shardWeightBytes } from '@seesaw/gpu-actor';
import { Checkpoint, loadModelConfig, parseParallelConfig, shardSpec } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, runReference } from './cluster-test-support.ts';
import { jobConfig } from './job-config-support.ts';

const TOKEN = 'remote-swap-token';
/** Tokens per KV block of every remote job (remote-replicas.ts). */
const REMOTE_BLOCK_SIZE = 16;
/** KV blocks each replica gets: the longest request (71 tokens) fits, all of them do not. */
const BLOCKS_PER_ENGINE = 10;
/** Host slots each replica's engine may swap to: more than all its requests together ever need. */
const HOST_SLOTS_PER_ENGINE = 64;

/**
 * Device memory leaving the fullest device exactly BLOCKS_PER_ENGINE KV blocks of `kvBytes`-byte
 * elements, and the host KV size.
 */
function memoryFor(parallel: string, kvBytes = 4): { deviceMemoryBytes: number; hostKvBytes: number } {
  const { dp, tp, pp } = parseParallelConfig(parallel);
  const checkpoint = Checkpoint.open(FIXTURE);
  try {
    const config = checkpoint.config;
    let deviceMemoryBytes = 0;
    for (let ppStage = 0; ppStage < pp; ppStage++) {
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const spec = shardSpec(config, { tp, tpRank, pp, ppStage });
        const layers = spec.layers.end - spec.layers.start;
        const heads = spec.kvHeads.end - spec.kvHeads.start;
        // K and V on the device.
        const bytesPerBlock = layers * 2 * heads * REMOTE_BLOCK_SIZE * config.headDim * kvBytes;
        const need = shardWeightBytes(checkpoint, spec) + BLOCKS_PER_ENGINE * bytesPerBlock;
        deviceMemoryBytes = Math.max(deviceMemoryBytes, need);
      }
    }
    const slotBytes = config.numLayers * 2 * config.numKvHeads * REMOTE_BLOCK_SIZE * config.headDim * kvBytes;
    return { deviceMemoryBytes, hostKvBytes: HOST_SLOTS_PER_ENGINE * dp * slotBytes };
  } finally {
    checkpoint.close();
  }
}

/** Twelve requests, prompts 3 to 47 tokens, 4 to 23 output tokens; every third one sampled with a seed. */
function makeLongRequests(vocabSize: number, seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: 12 }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length: 3 + next(45) }, () => 3 + next(vocabSize - 3)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 4 + next(20),
      temperature: i % 3 === 0 ? 0.9 : 0,
      topK: i % 3 === 0 ? 40 : 0,
      topP: i % 3 === 0 ? 0.95 : 1,
      seed: 5000 + i,
      ignoreEos: i % 2 === 0,
    },
  }));
}

async function runSwapJob(url: string, parallelism: string, requests: EngineRequest[], isKv16 = false) {
  const job = await RemoteJobClient.open({
    url,
    token: TOKEN,
    job: {
      config: jobConfig({
        modelDir: FIXTURE,
        parallelism,
        ...memoryFor(parallelism, isKv16 ? 2 : 4),
        ...(isKv16 ? { kvDtype: 'auto' as const } : {}),
        preemptionMode: 'swap',
        maxNumBatchedTokens: 64,
        maxNumSeqs: 8,
      }),
    },
  });
  try {
    for (const request of requests) job.addRequest(request);
    const finished: RequestOutput[] = [];
    while (job.hasUnfinishedRequests()) finished.push(...(await job.step()));
    const stats: EngineStats = { ...job.stats };
    return {
      layout: job.ready.layout,
      numKvBlocks: job.ready.numKvBlocks,
      kvDtype: job.ready.kvDtype,
      outputs: new Map(finished.map((o) => [o.requestId, o.outputTokenIds])),
      stats,
    };
  } finally {
    await job.close();
  }
}

describe('preemption by swap on a job over two hosts, one kv-store per host', () => {
  const logs: string[] = [];
  let daemon: CoordinatorDaemon;
  const agents: HostAgent[] = [];
  const requests = makeLongRequests(loadModelConfig(FIXTURE).vocabSize, 23);
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    daemon = await CoordinatorDaemon.start({ port: 0, token: TOKEN, log: (line) => logs.push(line) });
    for (const hostName of ['a', 'b']) {
      agents.push(
        await HostAgent.start({
          coordinatorUrl: daemon.url,
          token: TOKEN,
          hostName,
          numDevices: 1,
          workerUrl: deviceWorkerUrl(),
          createTpGroup: createDeviceWorkerGroup,
          log: (line) => logs.push(line),
        }),
      );
    }
    reference = await runReference(FIXTURE, requests);
  });

  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await daemon?.close();
  });

  it.each([
    ['D2', 'D2 on a (1 device), b (1 device)'],
    ['P2', 'P2 on a (1 device), b (1 device)'],
  ])(
    '%s: swaps instead of recomputing, same tokens as one device',
    async (parallelism, layout) => {
      const run = await runSwapJob(daemon.url, parallelism, requests);
      expect(run.layout).toBe(layout);
      expect(run.kvDtype).toBe('f32');
      expect(run.numKvBlocks).toBe((parallelism === 'D2' ? 2 : 1) * BLOCKS_PER_ENGINE);
      expect(run.stats.numSwapOuts).toBeGreaterThan(0);
      expect(run.stats.numSwapIns).toBe(run.stats.numSwapOuts);
      expect(run.stats.numPreemptions).toBe(run.stats.numSwapOuts);
      expect(run.stats.numRecomputedTokens).toBe(0);
      expect(run.outputs.size).toBe(requests.length);
      for (const [requestId, tokens] of reference)
        expect(run.outputs.get(requestId), requestId).toEqual(tokens);
      await expect.poll(() => daemon.health().runningJobs).toEqual([]);
    },
    40_000,
  );

  it('P2 with --kv-dtype auto (bf16 on this bf16 checkpoint): twice the blocks per byte, swaps, same tokens as one bf16 device', async () => {
    // Memory sized for BLOCKS_PER_ENGINE 2-byte blocks: an f32 cache would get half of them.
    const run = await runSwapJob(daemon.url, 'P2', requests, true);
    expect(run.numKvBlocks).toBe(BLOCKS_PER_ENGINE);
    // jobReady names the dtype auto resolved to, as a local run prints it.
    expect(run.kvDtype).toBe('bf16');
    expect(run.stats.numSwapOuts).toBeGreaterThan(0);
    expect(run.stats.numRecomputedTokens).toBe(0);
    const bf16Reference = await runReference(FIXTURE, requests, 'bf16');
    expect(new Map(run.outputs)).toEqual(bf16Reference);
    await expect.poll(() => daemon.health().runningJobs).toEqual([]);
  }, 40_000);
});
