import type { StepBatch, StepResult } from '@seesaw/protocol';
import { type EngineStats, isDecodeOnly, numPlannedTokens } from './engine.ts';
import { recordReshard, recordStep } from './engine-trace.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { SeesawScheduler, type SeesawSchedulerConfig } from './seesaw-scheduler.ts';
import type { StepPlan } from './step-plan.ts';
import type { Phase } from './step-scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

export type { Phase } from './step-scheduler.ts';

/** One device's part of a re-shard, as its ReshardDone reports it (fields of ReshardDone). */
export interface ReshardDeviceStats {
  ms: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
}

export interface ReshardStats {
  ms: number;
  /** Weight bytes received from peers plus read from the host, over the replica's devices. */
  bytesMoved: number;
  bytesFromHost: number;
  /** Device KV blocks of the new layout (min over devices). */
  numKvBlocks: number;
  route: string;
  /** Per device by local index, when the device reports it (one trace track each). */
  devices?: ReshardDeviceStats[];
}

/** One replica able to run in either layout (layout 0 = prefill, 1 = decode). */
export interface PhasedDevice {
  readonly blockSize: number;
  /** Of the current layout. */
  readonly numKvBlocks: number;
  readonly phase: Phase;
  /** pp of the current layout: steps it takes at once. */
  readonly maxInFlight: number;
  /**
   * Each device's role in the current layout ('stage 0 tp 1'), index = local device: the trace
   * draws every step on every device's track too. Absent: one track for the replica only.
   */
  readonly deviceRoles?: readonly string[];
  execute(batch: StepBatch): Promise<StepResult>;
  /** Re-shards to the other layout (all steps answered); resolves with the stats. */
  switchTo(phase: Phase): Promise<ReshardStats>;
}

export interface SeesawEngineOptions
  extends Omit<SeesawSchedulerConfig, 'blockSize' | 'numKvBlocks' | 'hostKv' | 'maxInFlight'> {
  /** The host KV tier (slots of device.blockSize tokens), slot ids local to this replica. */
  hostKv: { numSlots: number; slotBytes: number };
  /** Milliseconds clock for request times and the time figures (default performance.now). */
  clock?: () => number;
  trace?: TraceRecorder;
  /** Names the trace tracks: 'replica N', 'replica N reshard', 'replica N kv' (default 0). */
  replicaIndex?: number;
  /** One line per phase switch. */
  log?: (line: string) => void;
}

export interface SeesawEngineStats extends EngineStats {
  numSwitches: number;
  numWriteBacks: number;
  numPrefetches: number;
  /** Wall time of re-shards, and the weight bytes they moved (peers + host) and read from the host. */
  reshardMs: number;
  reshardBytes: number;
  reshardBytesFromHost: number;
  /** Wall time spent in each phase, re-shards excluded. */
  prefillMs: number;
  decodeMs: number;
  /** Time steps spent waiting for KV: prefetchWaitMs + writeBackWaitMs. */
  kvWaitMs: number;
  prefetchWaitMs: number;
  writeBackWaitMs: number;
  /** Summed transfer times (concurrent prefetches overlap: not a hiding figure). */
  prefetchMs: number;
  writeBackMs: number;
  /** Prefetched sequences steps needed, and those whose KV had landed first (hidden); and their bytes. */
  prefetchesNeeded: number;
  prefetchesLanded: number;
  prefetchBytesNeeded: number;
  prefetchBytesLanded: number;
}

type Settled = { plan: StepPlan; startMs: number; traceStartMs: number } & (
  | { result: StepResult }
  | { error: unknown }
);

interface Tally {
  numSteps: number;
  ms: number;
  numTokens: number;
}

/**
 * The Seesaw loop for one replica: a SeesawScheduler planning steps, a PhasedDevice running
 * them. Each step(): if a switch is pending (the scheduler drained), re-shard the device and
 * enter the new phase with its block count and pp; else start steps until the layout's pp are
 * in flight (or nothing can be planned) and apply the first to answer.
 */
export class SeesawEngine {
  readonly scheduler: SeesawScheduler;
  private readonly device: PhasedDevice;
  private readonly clock: () => number;
  private readonly trace: TraceRecorder | null;
  private readonly track: string;
  private readonly log: (line: string) => void;
  private readonly inFlight = new Map<number, Promise<Settled>>();
  private isStepping = false;
  /** A failed step or switch: the scheduler no longer matches the device, so every later call throws it. */
  private failureError: unknown = null;
  private busySinceMs = 0;
  private phaseSinceMs: number | null = null;
  private readonly times = {
    busyMs: 0,
    idleMs: 0,
    prefillMs: 0,
    decodeMs: 0,
    reshardMs: 0,
    reshardBytes: 0,
    reshardBytesFromHost: 0,
    prefetchWaitMs: 0,
    writeBackWaitMs: 0,
    prefetchMs: 0,
    writeBackMs: 0,
    prefetchesNeeded: 0,
    prefetchesLanded: 0,
    prefetchBytesNeeded: 0,
    prefetchBytesLanded: 0,
  };
  private readonly prefillTally: Tally = { numSteps: 0, ms: 0, numTokens: 0 };
  private readonly decodeTally: Tally = { numSteps: 0, ms: 0, numTokens: 0 };

  constructor(device: PhasedDevice, options: SeesawEngineOptions) {
    if (device.phase !== 'prefill')
      throw new Error(`the device must start in the prefill layout, not ${device.phase}`);
    const { clock, trace, replicaIndex, log, hostKv, ...schedulerOptions } = options;
    this.device = device;
    this.clock = clock ?? (() => performance.now());
    this.trace = trace ?? null;
    this.track = `replica ${replicaIndex ?? 0}`;
    this.log = log ?? (() => {});
    this.scheduler = new SeesawScheduler({
      ...schedulerOptions,
      blockSize: device.blockSize,
      numKvBlocks: device.numKvBlocks,
      hostKv: { ...hostKv, tokensPerSlot: device.blockSize },
      maxInFlight: device.maxInFlight,
    });
  }

  get maxModelLen(): number {
    return this.scheduler.maxModelLen;
  }

  get phase(): Phase {
    return this.scheduler.phase;
  }

  /** Queues a request; throws RequestRejectedError (nothing queued) for one that can never run. */
  addRequest(request: EngineRequest): void {
    this.scheduler.addRequest(request, this.clock());
  }

  hasUnfinishedRequests(): boolean {
    return this.scheduler.hasUnfinishedRequests();
  }

  /** One switch, or starts steps and applies the first to answer; returns requests finished. */
  async step(): Promise<RequestOutput[]> {
    if (this.isStepping) throw new Error('SeesawEngine.step() called while a step is running');
    if (this.failureError !== null) throw this.failureError;
    if (!this.scheduler.hasUnfinishedRequests()) return [];
    this.isStepping = true;
    this.phaseSinceMs ??= this.clock();
    try {
      const next = this.scheduler.pendingSwitch();
      if (next) {
        await this.switchTo(next);
        return [];
      }
      return await this.runSteps();
    } catch (error) {
      this.failureError = error;
      throw error;
    } finally {
      this.isStepping = false;
    }
  }

  /** Steps (switching as the policy says) until everything queued is done. */
  async run(onFinished?: (out: RequestOutput) => void): Promise<SeesawEngineStats> {
    while (this.scheduler.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  private async switchTo(phase: Phase): Promise<void> {
    const from = this.scheduler.phase;
    const startMs = this.clock();
    this.times[from === 'prefill' ? 'prefillMs' : 'decodeMs'] += startMs - this.phaseSinceMs!;
    const traceStartMs = this.trace?.now() ?? 0;
    const reshard = await this.device.switchTo(phase);
    this.scheduler.enterPhase(phase, this.device.numKvBlocks, { maxInFlight: this.device.maxInFlight });
    const endMs = this.clock();
    this.phaseSinceMs = endMs;
    this.times.reshardMs += endMs - startMs;
    this.times.reshardBytes += reshard.bytesMoved;
    this.times.reshardBytesFromHost += reshard.bytesFromHost;
    if (this.trace)
      recordReshard(this.trace, this.track, from, phase, traceStartMs, this.trace.now(), reshard);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    this.log(
      `${this.track}: ${from} -> ${phase} after ${this.scheduler.counters.numSteps} steps: ` +
        `re-shard ${mib(reshard.bytesMoved)} (${mib(reshard.bytesFromHost)} from host, ${reshard.route}) ` +
        `in ${(endMs - startMs).toFixed(1)} ms, ${this.device.numKvBlocks} KV blocks, ` +
        `${this.scheduler.numParked} parked, ${this.scheduler.numWaiting} waiting`,
    );
  }

  private async runSteps(): Promise<RequestOutput[]> {
    const scheduleStartMs = this.clock();
    while (this.inFlight.size < this.scheduler.maxInFlight) {
      const plan = this.scheduler.schedule();
      if (!plan) break;
      this.launch(plan);
    }
    if (this.inFlight.size === 0) {
      throw new Error(
        `the seesaw scheduler planned nothing in the ${this.scheduler.phase} phase with requests pending`,
      );
    }
    const waitStartMs = this.clock();
    this.times.idleMs += waitStartMs - scheduleStartMs;
    const settled = await Promise.race(this.inFlight.values());
    const endMs = this.clock();
    this.inFlight.delete(settled.plan.batch.stepId);
    if (this.inFlight.size === 0) this.times.busyMs += endMs - this.busySinceMs;
    if ('error' in settled) throw settled.error;
    const outputs = this.scheduler.update(settled.plan, settled.result, endMs);
    this.account(settled.plan, settled.result, settled.startMs, endMs, settled.traceStartMs);
    const updateEndMs = this.clock();
    this.times.idleMs += updateEndMs - endMs;
    this.times[this.scheduler.phase === 'prefill' ? 'prefillMs' : 'decodeMs'] +=
      updateEndMs - this.phaseSinceMs!;
    this.phaseSinceMs = updateEndMs;
    return outputs;
  }

  private launch(plan: StepPlan): void {
    const startMs = this.clock();
    if (this.inFlight.size === 0) this.busySinceMs = startMs;
    const traceStartMs = this.trace?.now() ?? 0;
    // Settled objects, never rejections: a failure is rethrown when its turn comes, and a
    // step still in flight behind a failed one cannot cause an unhandled rejection.
    const settled = this.device.execute(plan.batch).then(
      (result): Settled => ({ plan, startMs, traceStartMs, result }),
      (error: unknown): Settled => ({ plan, startMs, traceStartMs, error }),
    );
    this.inFlight.set(plan.batch.stepId, settled);
  }

  private account(
    plan: StepPlan,
    result: StepResult,
    startMs: number,
    endMs: number,
    traceStartMs: number,
  ): void {
    const tally = isDecodeOnly(plan) ? this.decodeTally : this.prefillTally;
    const numTokens = numPlannedTokens(plan);
    tally.numSteps++;
    tally.ms += endMs - startMs;
    tally.numTokens += numTokens;
    const kv = result.kvTimings;
    if (kv) {
      this.times.prefetchWaitMs += kv.prefetchWaitMs;
      this.times.writeBackWaitMs += kv.writeBackWaitMs;
      this.times.prefetchMs += kv.prefetchMs;
      this.times.writeBackMs += kv.writeBackMs;
      this.times.prefetchesNeeded += kv.prefetchesNeeded ?? 0;
      this.times.prefetchesLanded += kv.prefetchesLanded ?? 0;
      this.times.prefetchBytesNeeded += kv.prefetchBytesNeeded ?? 0;
      this.times.prefetchBytesLanded += kv.prefetchBytesLanded ?? 0;
    }
    if (this.trace) {
      const traceEndMs = Math.max(traceStartMs, this.trace.now());
      recordStep(
        this.trace,
        this.track,
        plan,
        this.scheduler.phase,
        traceStartMs,
        traceEndMs,
        kv,
        this.device.deviceRoles,
      );
    }
  }

  get stats(): SeesawEngineStats {
    const counters = this.scheduler.counters;
    const t = this.times;
    return {
      ...counters,
      busyMs: t.busyMs,
      idleMs: t.idleMs,
      numPrefillSteps: this.prefillTally.numSteps,
      prefillStepMs: this.prefillTally.ms,
      numPrefillStepTokens: this.prefillTally.numTokens,
      numDecodeSteps: this.decodeTally.numSteps,
      decodeStepMs: this.decodeTally.ms,
      numDecodeStepTokens: this.decodeTally.numTokens,
      reshardMs: t.reshardMs,
      reshardBytes: t.reshardBytes,
      reshardBytesFromHost: t.reshardBytesFromHost,
      prefillMs: t.prefillMs,
      decodeMs: t.decodeMs,
      kvWaitMs: t.prefetchWaitMs + t.writeBackWaitMs,
      prefetchWaitMs: t.prefetchWaitMs,
      writeBackWaitMs: t.writeBackWaitMs,
      prefetchMs: t.prefetchMs,
      writeBackMs: t.writeBackMs,
      prefetchesNeeded: t.prefetchesNeeded,
      prefetchesLanded: t.prefetchesLanded,
      prefetchBytesNeeded: t.prefetchBytesNeeded,
      prefetchBytesLanded: t.prefetchBytesLanded,
    };
  }
}
