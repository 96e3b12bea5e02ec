import { join } from 'node:path';
/** Shared by the cluster tests: starting a LocalCluster on a model and a reference engine run. */
import {
  ClusterEngine,
  DEFAULT_SAMPLING,
  Engine,
  type EngineRequest,
  LocalCluster,
  type LocalClusterOptions,
  type RequestOutput,
} from '@seesaw/coordinator';
import { CpuDevice, createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import type { KvDType } from '@seesaw/kernels';

export const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-llama-bf16');
export const TOKEN = 'cluster-test-token';
/** The block size the gpu-actor sharded test support drives devices with. */
export const BLOCK_SIZE = 8;
/** Weights of the tiny models are a few MiB; the rest of the budget is KV cache. */
export const DEVICE_MEMORY_BYTES = 24 << 20;

export function startCluster(
  modelDir: string,
  parallel: string,
  extra: Partial<LocalClusterOptions> = {},
): Promise<LocalCluster> {
  return LocalCluster.start({
    workerUrl: deviceWorkerUrl(),
    modelDir,
    parallel,
    numThreadsPerDevice: 1,
    deviceMemoryBytes: DEVICE_MEMORY_BYTES,
    blockSize: BLOCK_SIZE,
    token: TOKEN,
    createTpGroup: createDeviceWorkerGroup,
    groupTimeoutMs: 20_000,
    // Only refusals and failures: accepted hellos are not news in a test log.
    log: (line) => {
      if (!line.includes('accepted')) console.warn(line);
    },
    ...extra,
  });
}

/**
 * Eight requests of different lengths (prompts 3 to 90 tokens, 5 to 16 output tokens), greedy;
 * every other one stops at EOS, the rest ignore it.
 */
export function makeRequests(vocabSize: number, seed = 7): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  const promptLengths = [3, 90, 17, 41, 8, 64, 29, 12];
  return promptLengths.map((length, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length }, () => 3 + next(vocabSize - 3)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 5 + next(12),
      temperature: 0,
      seed: 100 + i,
      ignoreEos: i % 2 === 0,
    },
  }));
}

export const ENGINE_OPTIONS = { maxNumBatchedTokens: 64, maxNumSeqs: 8 } as const;

/** The requests through one in-process CpuDevice and Engine: the reference answers. */
export async function runReference(
  modelDir: string,
  requests: EngineRequest[],
  kvDtype: KvDType = 'f32',
): Promise<Map<string, number[]>> {
  const device = await CpuDevice.load(modelDir, {
    numThreads: 1,
    blockSize: BLOCK_SIZE,
    kvCacheBytes: 16 << 20,
    kvDtype,
  });
  const engine = new Engine(device, {
    ...ENGINE_OPTIONS,
    maxModelLen: device.config.maxPositionEmbeddings,
    eosTokenIds: device.config.eosTokenIds,
  });
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, number[]>();
  await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
  device.close();
  return outputs;
}

/** The same requests through a ClusterEngine over the cluster's replicas. */
export async function runOnCluster(
  cluster: LocalCluster,
  requests: EngineRequest[],
): Promise<{ outputs: Map<string, number[]>; finished: RequestOutput[]; engine: ClusterEngine }> {
  const engine = new ClusterEngine(cluster.replicas, cluster.parallel.pp, {
    ...ENGINE_OPTIONS,
    maxModelLen: cluster.config.maxPositionEmbeddings,
    eosTokenIds: cluster.config.eosTokenIds,
  });
  for (const request of requests) engine.addRequest(request);
  const finished: RequestOutput[] = [];
  await engine.run((output) => finished.push(output));
  return { outputs: new Map(finished.map((o) => [o.requestId, o.outputTokenIds])), finished, engine };
}
