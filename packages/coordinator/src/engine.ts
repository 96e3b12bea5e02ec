import { ENGINE_DEFAULTS, type StepBatch, type StepResult } from '@seesaw/protocol';
import { EngineCore } from './engine-core.ts';
import type { StepTimeStats } from './engine-core-stats.ts';
import type { PreemptionMode } from './preemption-policy.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { Scheduler } from './scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

/** What the engine drives: one device now, an actor group later. */
export interface ExecutionDevice {
  readonly numKvBlocks: number;
  readonly blockSize: number;
  execute(batch: StepBatch): Promise<StepResult>;
}

export interface EngineOptions {
  /** Token budget per step, prompt chunks and decode tokens together (default 512). */
  maxNumBatchedTokens?: number;
  /** Running sequences cap (default 256). */
  maxNumSeqs?: number;
  /** Prompt + output cap (model max positions); lowered to the KV cache's capacity if larger. */
  maxModelLen: number;
  eosTokenIds: number[];
  /** Fraction of blocks kept free when admitting new sequences (default 0.01). */
  watermark?: number;
  /** Milliseconds clock for request timestamps and busy/idle times (default performance.now). */
  clock?: () => number;
  /**
   * The host KV tier the device swaps to (its slots hold device.blockSize tokens each). Its
   * slot count must be the device's store's, whose allocator this engine's mirrors.
   */
  hostKv?: { numSlots: number; slotBytes: number };
  /** Default 'auto' with hostKv, else 'recompute'. */
  preemptionMode?: PreemptionMode;
  /** Model parameters ('auto' cost model; required by it). */
  numModelParams?: number;
  /** 'auto' cost model rates (defaults 150e9 FLOP/s, 5e9 B/s, 50e-6 s). */
  computeFlopsPerSecond?: number;
  hostCopyBytesPerSecond?: number;
  swapLatencySeconds?: number;
  /** Steps in flight at once: the device's pipeline depth (pp). Default 1. */
  maxInFlight?: number;
  /** Records each step as a span (category prefill/decode) on `traceTrack`. */
  trace?: TraceRecorder;
  /** Default: a fresh 'engine N' from the recorder (the replicas of one ClusterEngine get 0, 1, ...). */
  traceTrack?: string;
}

export const DEFAULT_WATERMARK = 0.01;

export interface EngineStats extends StepTimeStats {
  numSteps: number;
  /** All tokens sent to the device (prompt chunks, recompute, decode). */
  numScheduledTokens: number;
  /** Prompt positions computed for the first time. */
  numPromptTokensComputed: number;
  /** Positions computed again after preemption. */
  numRecomputedTokens: number;
  numOutputTokens: number;
  numPreemptions: number;
  numFinishedRequests: number;
  /** Preemptions by swap, readmissions by swap-in, KV bytes both ways. */
  numSwapOuts: number;
  numSwapIns: number;
  swappedBytes: number;
  /** Token positions whose KV moved to or from the host tier (swaps, write-backs, prefetches), and their host bytes. */
  kvMovedTokens: number;
  kvMovedBytes: number;
}

export { isDecodeOnly, numPlannedTokens } from './engine-core.ts';

/**
 * Offline continuous-batching loop of the static policy: the vLLM-style Scheduler driving one
 * device through EngineCore, maxInFlight steps (the device's pp) in flight at a time.
 */
export class Engine {
  readonly scheduler: Scheduler;
  private readonly core: EngineCore<Scheduler>;

  constructor(device: ExecutionDevice, options: EngineOptions) {
    this.scheduler = new Scheduler({
      numKvBlocks: device.numKvBlocks,
      blockSize: device.blockSize,
      maxNumBatchedTokens: options.maxNumBatchedTokens ?? ENGINE_DEFAULTS.maxNumBatchedTokens,
      maxNumSeqs: options.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs,
      maxModelLen: options.maxModelLen,
      eosTokenIds: options.eosTokenIds,
      watermark: options.watermark ?? DEFAULT_WATERMARK,
      hostKv: options.hostKv && { ...options.hostKv, tokensPerSlot: device.blockSize },
      preemptionMode: options.preemptionMode,
      numModelParams: options.numModelParams,
      computeFlopsPerSecond: options.computeFlopsPerSecond,
      hostCopyBytesPerSecond: options.hostCopyBytesPerSecond,
      swapLatencySeconds: options.swapLatencySeconds,
      maxInFlight: options.maxInFlight,
    });
    const executor = {
      blockSize: device.blockSize,
      numKvBlocks: device.numKvBlocks,
      maxConcurrentBatches: this.scheduler.maxInFlight,
      execute: (batch: StepBatch) => device.execute(batch),
    };
    this.core = new EngineCore(this.scheduler, executor, {
      clock: options.clock ?? (() => performance.now()),
      trace: options.trace
        ? { recorder: options.trace, track: options.traceTrack ?? options.trace.claimTrack('engine') }
        : null,
      log: () => {},
      latchFailures: false,
    });
  }

  /** The prompt + output cap in force (the configured one, or the KV cache capacity if smaller). */
  get maxModelLen(): number {
    return this.scheduler.maxModelLen;
  }

  /** Queues a request; throws RequestRejectedError (nothing queued) for one that can never run. A null seed gets a random one here. */
  addRequest(request: EngineRequest): void {
    this.core.addRequest(request);
  }

  hasUnfinishedRequests(): boolean {
    return this.core.hasUnfinishedRequests();
  }

  /** Runs one scheduled step; returns requests finished in it. */
  step(): Promise<RequestOutput[]> {
    return this.core.step();
  }

  /** Steps until everything queued (including requests added meanwhile) is done. */
  async run(onFinished?: (out: RequestOutput) => void): Promise<EngineStats> {
    await this.core.run(onFinished);
    return this.stats;
  }

  get stats(): EngineStats {
    const core = this.core.stats;
    return {
      ...this.scheduler.counters,
      busyMs: core.busyMs,
      idleMs: core.idleMs,
      numPrefillSteps: core.numPrefillSteps,
      prefillStepMs: core.prefillStepMs,
      numPrefillStepTokens: core.numPrefillStepTokens,
      numDecodeSteps: core.numDecodeSteps,
      decodeStepMs: core.decodeStepMs,
      numDecodeStepTokens: core.numDecodeStepTokens,
    };
  }
}
