/**
 * One model loaded on the CPU device with an engine in front of it, and the loop that drives
 * the engine step by step (so the caller sees progress between steps). Shared by `run`,
 * `bench` and the default job, so every path measures the same thing.
 */
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { Engine, type EngineRequest, type RequestOutput, RequestRejectedError } from '@seesaw/coordinator';
import type { CpuDevice } from '@seesaw/gpu-actor';
import type { ModelConfig } from '@seesaw/model';

export interface EngineSettings {
  /** Kernel threads; all cores when absent. */
  numThreads?: number;
  /** KV cache size; the device picks when absent. */
  kvCacheBytes?: number;
  /**
   * Token budget of one step (prefill chunks plus decodes); the engine's default when absent.
   * On the default job (2 cores) 512, 1024 and 2048 measured the same within noise, and a
   * smaller step keeps progress moving.
   */
  maxNumBatchedTokens?: number;
  /** Cap on sequences running at once; the engine's default when absent. */
  maxNumSeqs?: number;
}

export interface EngineSession {
  device: CpuDevice;
  engine: Engine;
  config: ModelConfig;
  /** The model directory's base name: the `model` field of output records. */
  modelName: string;
  close(): Promise<void>;
}

export async function openEngineSession(modelDir: string, settings: EngineSettings): Promise<EngineSession> {
  // Loaded here, not at the top: it pulls in the native kernels, and flag errors, input
  // validation and resume bookkeeping must work (and fail fast) without them.
  const { CpuDevice } = await import('@seesaw/gpu-actor');
  const device = await CpuDevice.load(modelDir, {
    numThreads: settings.numThreads ?? availableParallelism(),
    kvCacheBytes: settings.kvCacheBytes,
  });
  const config = device.config;
  const engine = new Engine(device, {
    maxNumBatchedTokens: settings.maxNumBatchedTokens,
    maxNumSeqs: settings.maxNumSeqs,
    maxModelLen: config.maxPositionEmbeddings,
    eosTokenIds: config.eosTokenIds,
  });
  return {
    device,
    engine,
    config,
    modelName: basename(resolve(modelDir)),
    close: async () => {
      await device.close();
    },
  };
}

/** Queues a request; returns the rejection message instead of throwing when the engine refuses it. */
export function tryAddRequest(engine: Engine, request: EngineRequest): string | null {
  try {
    engine.addRequest(request);
    return null;
  } catch (error) {
    if (error instanceof RequestRejectedError) return error.message;
    throw error;
  }
}

export interface DrainStats {
  numFinished: number;
  /** Live engine counters: include tokens of sequences still running. */
  numOutputTokens: number;
  numPromptTokensComputed: number;
}

/**
 * Steps the engine until every queued request is done. `onFinished` sees each output as its
 * step completes; `onStep` runs after every step with running totals. Yields to the event
 * loop between steps so timers (progress) and stream writes are not starved by a device
 * that computes synchronously.
 */
export async function drainEngine(
  engine: Engine,
  onFinished: (output: RequestOutput) => void,
  onStep?: (stats: DrainStats) => void,
): Promise<DrainStats> {
  const stats: DrainStats = { numFinished: 0, numOutputTokens: 0, numPromptTokensComputed: 0 };
  while (engine.hasUnfinishedRequests()) {
    const finished = await engine.step();
    for (const output of finished) {
      stats.numFinished++;
      onFinished(output);
    }
    const engineStats = engine.stats;
    stats.numOutputTokens = engineStats.numOutputTokens;
    stats.numPromptTokensComputed = engineStats.numPromptTokensComputed;
    onStep?.(stats);
    await yieldToEventLoop();
  }
  return stats;
}
