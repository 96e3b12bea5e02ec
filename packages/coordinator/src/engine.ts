import { ENGINE_DEFAULTS, type StepBatch, type StepResult } from '@seesaw/protocol';
import { recordStep } from './engine-trace.ts';
import type { PreemptionMode } from './preemption-policy.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { Scheduler } from './scheduler.ts';
import type { StepPlan } from './step-plan.ts';
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
  /** Records each step as a span (category prefill/decode) on `traceTrack`. */
  trace?: TraceRecorder;
  /** Default: a fresh 'engine N' from the recorder (engines of one ClusterEngine get 0, 1, ... replica-major). */
  traceTrack?: string;
}

export const DEFAULT_WATERMARK = 0.01;

export interface EngineStats {
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
  /** Time spent awaiting device.execute. */
  busyMs: number;
  /** Time inside step() spent outside the device: scheduling and applying results. */
  idleMs: number;
  /** Steps that computed prompt tokens (alone or beside decodes), their device time and tokens. */
  numPrefillSteps: number;
  prefillStepMs: number;
  numPrefillStepTokens: number;
  /** Steps that only decoded (one new token per sequence), their device time and tokens. */
  numDecodeSteps: number;
  decodeStepMs: number;
  numDecodeStepTokens: number;
}

/** A step where every sequence computes one token and samples: pure decode. Any prompt chunk makes it prefill. */
export function isDecodeOnly(plan: StepPlan): boolean {
  return plan.chunks.every((chunk) => chunk.numNewTokens === 1 && chunk.isSampled);
}

export function numPlannedTokens(plan: StepPlan): number {
  return plan.chunks.reduce((sum, chunk) => sum + chunk.numNewTokens, 0);
}

/** Device time and tokens of one kind of step. */
interface PhaseTally {
  numSteps: number;
  ms: number;
  numTokens: number;
}

/**
 * Offline continuous-batching loop: a Scheduler planning steps and a device running them,
 * one step in flight at a time.
 */
export class Engine {
  readonly scheduler: Scheduler;
  private readonly device: ExecutionDevice;
  private readonly clock: () => number;
  private busyMs = 0;
  private idleMs = 0;
  private readonly prefill: PhaseTally = { numSteps: 0, ms: 0, numTokens: 0 };
  private readonly decode: PhaseTally = { numSteps: 0, ms: 0, numTokens: 0 };
  private isStepping = false;
  private readonly trace: { recorder: TraceRecorder; track: string } | null;

  constructor(device: ExecutionDevice, options: EngineOptions) {
    this.device = device;
    this.clock = options.clock ?? (() => performance.now());
    this.trace = options.trace
      ? { recorder: options.trace, track: options.traceTrack ?? options.trace.claimTrack('engine') }
      : null;
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
    });
  }

  /** The prompt + output cap in force (the configured one, or the KV cache capacity if smaller). */
  get maxModelLen(): number {
    return this.scheduler.maxModelLen;
  }

  /** Queues a request; throws RequestRejectedError (nothing queued) for one that can never run. A null seed gets a random one here. */
  addRequest(request: EngineRequest): void {
    this.scheduler.addRequest(request, this.clock());
  }

  hasUnfinishedRequests(): boolean {
    return this.scheduler.hasUnfinishedRequests();
  }

  /** Runs one scheduled step; returns requests finished in it. */
  async step(): Promise<RequestOutput[]> {
    if (this.isStepping) throw new Error('Engine.step() called while a step is running');
    if (!this.scheduler.hasUnfinishedRequests()) return [];
    this.isStepping = true;
    try {
      const scheduleStart = this.clock();
      const plan = this.scheduler.schedule();
      if (!plan) throw new Error('scheduler planned nothing with requests pending');
      const executeStart = this.clock();
      const traceStart = this.trace?.recorder.now() ?? 0;
      const result = await this.device.execute(plan.batch);
      const executeEnd = this.clock();
      if (this.trace) {
        const { recorder, track } = this.trace;
        recordStep(
          recorder,
          track,
          plan,
          isDecodeOnly(plan) ? 'decode' : 'prefill',
          traceStart,
          recorder.now(),
        );
      }
      const outputs = this.scheduler.update(plan, result, executeEnd);
      const updateEnd = this.clock();
      this.busyMs += executeEnd - executeStart;
      const tally = isDecodeOnly(plan) ? this.decode : this.prefill;
      tally.numSteps++;
      tally.ms += executeEnd - executeStart;
      tally.numTokens += numPlannedTokens(plan);
      this.idleMs += executeStart - scheduleStart + (updateEnd - executeEnd);
      return outputs;
    } finally {
      this.isStepping = false;
    }
  }

  /** Steps until everything queued (including requests added meanwhile) is done. */
  async run(onFinished?: (out: RequestOutput) => void): Promise<EngineStats> {
    while (this.scheduler.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  get stats(): EngineStats {
    return {
      ...this.scheduler.counters,
      busyMs: this.busyMs,
      idleMs: this.idleMs,
      numPrefillSteps: this.prefill.numSteps,
      prefillStepMs: this.prefill.ms,
      numPrefillStepTokens: this.prefill.numTokens,
      numDecodeSteps: this.decode.numSteps,
      decodeStepMs: this.decode.ms,
      numDecodeStepTokens: this.decode.numTokens,
    };
  }
}
