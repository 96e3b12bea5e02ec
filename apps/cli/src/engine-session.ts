/**
 * One model loaded on the CPU device with an engine in front of it, and the loop that drives
 * the engine step by step (so the caller sees progress between steps). Shared by `run`,
 * `bench` and the default job, so every path measures the same thing.
 */

import { basename, resolve } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  Engine,
  type EngineRequest,
  type EngineStats,
  type PreemptionMode,
  type RequestOutput,
  RequestRejectedError,
  type TraceRecorder,
} from '@seesaw/coordinator';
import { expectedTensors, loadModelConfig, type ModelConfig, resolveKvDtype } from '@seesaw/model';
import { ENGINE_DEFAULTS, type KvCacheDType, type KvDTypeSetting } from '@seesaw/protocol';
import type { DeviceBackend } from './backend-flags.ts';
import type { ClusterSettings } from './cluster-flags.ts';
import { buildEngineConfig } from './engine-config.ts';
import type { SeesawSettings } from './seesaw-flags.ts';

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
  /** Run on a local cluster of device workers (--devices/--config); in-process CpuDevice when absent. */
  cluster?: ClusterSettings;
  /** What the cluster's device workers compute on (--backend); cpu when absent. */
  backend?: DeviceBackend;
  /** Host-memory KV tier for preemption by swapping (--host-kv-memory); none when absent. */
  hostKvBytes?: number;
  /** How to preempt when device KV runs out (--preemption); 'auto' with a host tier, else recompute. */
  preemptionMode?: PreemptionMode;
  /** KV cache element type on the devices and the host tier (--kv-dtype); ENGINE_DEFAULTS' when absent. */
  kvDtype?: KvDTypeSetting;
  /** Prefill and decode under two layouts of a local cluster, re-sharding between them (--prefill/--decode). */
  seesaw?: SeesawSettings;
  /** Where steps, re-shards and KV transfers are recorded (--trace, --report); none when absent. */
  recorder?: TraceRecorder;
}

/** Parameters of the model, from the tensor shapes its config implies (for the swap cost model). */
function numModelParams(config: ModelConfig): number {
  return expectedTensors(config).reduce((sum, tensor) => sum + tensor.shape.reduce((a, b) => a * b, 1), 0);
}

/** What a session reports about the memory it runs on (one device, or a cluster's totals). */
export interface SessionDevice {
  readonly weightBytes: number;
  readonly kvCacheBytes: number;
  readonly numKvBlocks: number;
  readonly blockSize: number;
  /** Element type of its KV cache (device and host tier); absent where not known here (a remote job). */
  readonly kvDtype?: KvCacheDType;
}

/** The engine surface run and bench drive: an Engine, or a ClusterEngine over device workers. */
export interface SessionEngine {
  readonly maxModelLen: number;
  readonly stats: EngineStats;
  addRequest(request: EngineRequest): void;
  hasUnfinishedRequests(): boolean;
  step(): Promise<RequestOutput[]>;
  /**
   * Requests refused after addRequest accepted them (a cluster job's coordinator rejects one
   * alone, e.g. a token outside the vocabulary); each is no longer unfinished. Absent: never.
   */
  takeRejections?(): Array<{ requestId: string; message: string }>;
}

/** What bench --compare and the reports need beyond EngineStats, the same for every kind of session. */
export interface SessionFigures {
  numSwitches: number;
  /**
   * Per replica: Seesaw, wall time in each phase; static, device time of prefill-carrying and
   * decode-only steps (a cluster's: per virtual engine).
   */
  prefillMs: number;
  decodeMs: number;
  reshardMs: number;
  /** Steps waiting for KV transfers (prefetches not done, write-backs not acknowledged). */
  kvWaitMs: number;
  /** Summed issue->done time of prefetched swap-ins, and the part of it steps waited for. */
  prefetchMs: number;
  prefetchWaitMs: number;
  /** Prefetched sequences steps needed, those whose KV had landed before the step; their bytes. */
  prefetchesNeeded: number;
  prefetchesLanded: number;
  prefetchBytesNeeded: number;
  prefetchBytesLanded: number;
  /** Largest weights + KV cache one device held (a static cluster: the per-device mean of a replica). */
  peakDeviceMemoryBytes: number;
  /** The host KV tier's size; 0 without one. */
  hostKvBytes: number;
}

/**
 * Figures of a session without phases: step device times and memory. A cluster's engines
 * (dp * pp virtual engines) step at the same time, so their summed device time is divided by
 * their number: the time of one engine, comparable with a Seesaw replica's wall time.
 */
export function staticFigures(
  stats: EngineStats,
  peakDeviceMemoryBytes: number,
  hostKvBytes = 0,
  numEngines = 1,
): SessionFigures {
  return {
    numSwitches: 0,
    prefillMs: stats.prefillStepMs / numEngines,
    decodeMs: stats.decodeStepMs / numEngines,
    reshardMs: 0,
    kvWaitMs: 0,
    prefetchMs: 0,
    prefetchWaitMs: 0,
    prefetchesNeeded: 0,
    prefetchesLanded: 0,
    prefetchBytesNeeded: 0,
    prefetchBytesLanded: 0,
    peakDeviceMemoryBytes,
    hostKvBytes,
  };
}

/**
 * Share of the prefetched sequences steps needed whose KV had landed before the step began
 * (hidden swap-ins); null when no step needed one. Not 1 - wait / summed prefetch time: prefetches
 * in flight together overlap, so their summed times count the same milliseconds more than once.
 */
export function swapInHiddenFraction(figures: SessionFigures): number | null {
  return figures.prefetchesNeeded > 0 ? figures.prefetchesLanded / figures.prefetchesNeeded : null;
}

/** The same share by bytes. */
export function swapInHiddenByteFraction(figures: SessionFigures): number | null {
  return figures.prefetchBytesNeeded > 0 ? figures.prefetchBytesLanded / figures.prefetchBytesNeeded : null;
}

export interface EngineSession {
  device: SessionDevice;
  engine: SessionEngine;
  config: ModelConfig;
  /** The model directory's base name: the `model` field of output records. */
  modelName: string;
  /** Where it runs, for logs: 'in-process CPU device' or e.g. 'T2 on 2 device workers (1 thread each)'. */
  layout: string;
  /** Read before close(). */
  figures(): SessionFigures;
  close(): Promise<void>;
}

export async function openEngineSession(modelDir: string, settings: EngineSettings): Promise<EngineSession> {
  // Built once here; every adapter below runs with exactly this configuration.
  const engineConfig = buildEngineConfig(modelDir, settings);
  if (settings.seesaw) {
    const { openSeesawSession } = await import('./seesaw-session.ts');
    return openSeesawSession(engineConfig, settings);
  }
  if (settings.cluster) {
    const { openClusterSession } = await import('./cluster-session.ts');
    return openClusterSession(engineConfig, settings);
  }
  // Loaded here, not at the top: it pulls in the native kernels, and flag errors, input
  // validation and resume bookkeeping must work (and fail fast) without them.
  const { CpuDevice } = await import('@seesaw/gpu-actor');
  const { HostKvStore, hostKvLayoutFor } = await import('@seesaw/kv-store');
  const { cache, scheduler } = engineConfig;
  const kvDtype = resolveKvDtype(cache.kvDtype ?? ENGINE_DEFAULTS.kvDtype, modelDir);
  const hostKv =
    cache.hostKvBytes === undefined
      ? undefined
      : new HostKvStore({
          layout: hostKvLayoutFor(loadModelConfig(modelDir), cache.blockSize, kvDtype),
          capacityBytes: cache.hostKvBytes,
        });
  const device = await CpuDevice.load(modelDir, {
    numThreads: engineConfig.parallel.numThreadsPerDevice,
    kvCacheBytes: cache.kvCacheBytes,
    blockSize: cache.blockSize,
    kvDtype,
    hostKv,
  });
  const config = device.config;
  const engine = new Engine(device, {
    maxNumBatchedTokens: scheduler.maxNumBatchedTokens,
    maxNumSeqs: scheduler.maxNumSeqs,
    maxModelLen: config.maxPositionEmbeddings,
    eosTokenIds: config.eosTokenIds,
    hostKv: hostKv && { numSlots: hostKv.numSlots, slotBytes: hostKv.slotBytes },
    preemptionMode: cache.preemptionMode,
    numModelParams: numModelParams(config),
    trace: settings.recorder,
  });
  return {
    device: {
      weightBytes: device.weightBytes,
      kvCacheBytes: device.kvCacheBytes,
      numKvBlocks: device.numKvBlocks,
      blockSize: device.blockSize,
      kvDtype,
    },
    engine,
    config,
    modelName: basename(resolve(modelDir)),
    layout: 'in-process CPU device',
    figures: () => staticFigures(engine.stats, device.weightBytes + device.kvCacheBytes, cache.hostKvBytes),
    close: async () => {
      await device.close();
    },
  };
}

/** Queues a request; returns the rejection message instead of throwing when the engine refuses it. */
export function tryAddRequest(engine: SessionEngine, request: EngineRequest): string | null {
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
 * step completes; `onRejected` each request the engine refused after queueing it; `onStep` runs
 * after every step with running totals. Yields to the event
 * loop between steps so timers (progress) and stream writes are not starved by a device
 * that computes synchronously.
 */
export async function drainEngine(
  engine: SessionEngine,
  onFinished: (output: RequestOutput) => void,
  onStep?: (stats: DrainStats) => void,
  onRejected?: (requestId: string, message: string) => void,
): Promise<DrainStats> {
  const stats: DrainStats = { numFinished: 0, numOutputTokens: 0, numPromptTokensComputed: 0 };
  while (engine.hasUnfinishedRequests()) {
    const finished = await engine.step();
    for (const output of finished) {
      stats.numFinished++;
      onFinished(output);
    }
    for (const { requestId, message } of engine.takeRejections?.() ?? []) {
      if (!onRejected) throw new Error(`engine rejected ${JSON.stringify(requestId)}: ${message}`);
      onRejected(requestId, message);
    }
    const engineStats = engine.stats;
    stats.numOutputTokens = engineStats.numOutputTokens;
    stats.numPromptTokensComputed = engineStats.numPromptTokensComputed;
    onStep?.(stats);
    await yieldToEventLoop();
  }
  return stats;
}

/** "75.0% of 16 sequences, 62.5% of bytes", or '-' when no step needed a prefetched sequence. */
export function formatSwapInHidden(figures: SessionFigures): string {
  const bySequences = swapInHiddenFraction(figures);
  if (bySequences === null) return '-';
  const byBytes = swapInHiddenByteFraction(figures);
  return (
    `${(bySequences * 100).toFixed(1)}% of ${figures.prefetchesNeeded} sequences` +
    (byBytes === null ? '' : `, ${(byBytes * 100).toFixed(1)}% of bytes`)
  );
}
