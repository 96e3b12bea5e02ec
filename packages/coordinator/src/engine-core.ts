/**
 * EngineCore: the one engine loop every replica runs (static or Seesaw policy alike).
 *
 * Design (vLLM v1's EngineCore + batch_queue shape):
 * - A StepScheduler (pure: plans steps, applies results) and a ReplicaExecutor (what a replica
 *   offers: local worker threads or a remote host) meet here and nowhere else.
 * - Batch queue: up to min(scheduler.maxInFlight, maxStepsInFlight(executor)) steps in flight.
 *   Each step() fills the queue (schedule -> executor.execute), then waits for the OLDEST step
 *   still in flight to answer... in practice the first to settle, since the scheduler accepts
 *   results in any order among the steps in flight; it applies it with scheduler.update.
 *   Pipeline parallelism is only "more steps in flight": pp stages = maxConcurrentBatches.
 * - Layout switches: when scheduler.pendingSwitch() names a phase (it does so only with nothing
 *   in flight), step() awaits executor.switchTo(phase) and enters the phase with the new
 *   layout's KV block count and depth. The static policy never asks, so its executors need no
 *   switchTo.
 * - Swaps in/out are not separate calls: the scheduler plans them into the StepBatch (swapIn /
 *   swapOut lists), so execute() carries them in step order with the compute.
 * - A failed step or switch leaves the scheduler out of step with the device: with
 *   `latchFailures` every later call rethrows it (the cluster layer then drops the replica).
 * - Clock accounting: busy = time with >= 1 step in flight; idle = scheduling + applying; phase
 *   times exclude re-shards. Traces draw each step on the replica's track.
 */
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { type EngineCoreStats, EngineCoreTally } from './engine-core-stats.ts';
import { recordReshard, recordStep } from './engine-trace.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import type { StepPlan } from './step-plan.ts';
import type { Phase, StepScheduler } from './step-scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

/** One device's part of a re-shard, as its ReshardDone reports it (fields of ReshardDone). */
export interface ReshardDeviceStats {
  ms: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
  /** The device's own start and end of its part, on the coordinator's epoch clock (absent: unknown). */
  startMs?: number;
  endMs?: number;
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

/** What one replica offers the engine loop. */
export interface ReplicaExecutor {
  readonly blockSize: number;
  /** Of the current layout. */
  readonly numKvBlocks: number;
  /** Steps the current layout takes at once (its pp). */
  readonly maxConcurrentBatches: number;
  /**
   * The devices run steps in arrival order, so a pipelined layout (pp > 1) may be sent one step
   * more than it has stages: it waits at the first stage, which starts it the moment it finishes
   * the step before instead of idling until the coordinator has applied the last stage's answer
   * and planned the next step.
   */
  readonly queuesSteps?: boolean;
  /** Each device's role in the current layout ('stage 0 tp 1'): one trace track each. */
  readonly deviceRoles?: readonly string[];
  /** Runs one step, its planned swaps included. */
  execute(batch: StepBatch): Promise<StepResult>;
  /** Re-shards to the layout of `phase` (nothing in flight); absent for a static replica. */
  switchTo?(phase: Phase): Promise<ReshardStats>;
}

export interface EngineCoreOptions {
  clock: () => number;
  trace: { recorder: TraceRecorder; track: string } | null;
  log: (line: string) => void;
  /** After a failed step or switch, every later step() rethrows it. */
  latchFailures: boolean;
  /** Appended to the switch log line (the policy's queue state). */
  describeQueues?: () => string;
}

export { type EngineCoreStats, isDecodeOnly, numPlannedTokens } from './engine-core-stats.ts';

/** Steps `executor` takes at once: its pp, plus one queued at the first stage of a pipeline that queues steps. */
export function maxStepsInFlight(
  executor: Pick<ReplicaExecutor, 'maxConcurrentBatches' | 'queuesSteps'>,
): number {
  const pp = executor.maxConcurrentBatches;
  return executor.queuesSteps && pp > 1 ? pp + 1 : pp;
}

type Settled = { plan: StepPlan; startMs: number; traceStartMs: number } & (
  | { result: StepResult }
  | { error: unknown }
);

export class EngineCore<S extends StepScheduler = StepScheduler> {
  readonly scheduler: S;
  private readonly executor: ReplicaExecutor;
  private readonly options: EngineCoreOptions;
  private readonly inFlight = new Map<number, Promise<Settled>>();
  private isStepping = false;
  private failureError: unknown = null;
  private busySinceMs = 0;
  private phaseSinceMs: number | null = null;
  private readonly tally = new EngineCoreTally();

  constructor(scheduler: S, executor: ReplicaExecutor, options: EngineCoreOptions) {
    this.scheduler = scheduler;
    this.executor = executor;
    this.options = options;
  }

  /** Queues a request; throws RequestRejectedError (nothing queued) for one that can never run. */
  addRequest(request: EngineRequest): void {
    this.scheduler.addRequest(request, this.options.clock());
  }

  hasUnfinishedRequests(): boolean {
    return this.scheduler.hasUnfinishedRequests();
  }

  /** One switch, or fills the batch queue and applies the first step to answer; returns requests finished. */
  async step(): Promise<RequestOutput[]> {
    if (this.isStepping) throw new Error('step() called while a step is running');
    if (this.failureError !== null) throw this.failureError;
    if (!this.scheduler.hasUnfinishedRequests()) return [];
    this.isStepping = true;
    this.phaseSinceMs ??= this.options.clock();
    try {
      const next = this.scheduler.pendingSwitch();
      if (next) {
        await this.switchTo(next);
        return [];
      }
      return await this.runSteps();
    } catch (error) {
      if (this.options.latchFailures) this.failureError = error;
      throw error;
    } finally {
      this.isStepping = false;
    }
  }

  /** Steps (switching as the policy says) until everything queued is done. */
  async run(onFinished?: (out: RequestOutput) => void): Promise<void> {
    while (this.scheduler.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
  }

  private phaseKey(): 'prefillMs' | 'decodeMs' {
    return this.scheduler.phase === 'decode' ? 'decodeMs' : 'prefillMs';
  }

  private async switchTo(phase: Phase): Promise<void> {
    const { clock, trace, log } = this.options;
    if (!this.executor.switchTo)
      throw new Error(`the scheduler asked for a switch to ${phase}, but this replica has one layout`);
    const from = this.scheduler.phase ?? 'prefill';
    const startMs = clock();
    this.tally.times[this.phaseKey()] += startMs - this.phaseSinceMs!;
    const traceStartMs = trace?.recorder.now() ?? 0;
    const reshard = await this.executor.switchTo(phase);
    this.scheduler.enterPhase(phase, this.executor.numKvBlocks, {
      maxInFlight: this.executor.maxConcurrentBatches,
    });
    const endMs = clock();
    this.phaseSinceMs = endMs;
    this.tally.times.reshardMs += endMs - startMs;
    this.tally.times.reshardBytes += reshard.bytesMoved;
    this.tally.times.reshardBytesFromHost += reshard.bytesFromHost;
    if (trace)
      recordReshard(trace.recorder, trace.track, from, phase, traceStartMs, trace.recorder.now(), reshard);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    log(
      `${trace?.track ?? 'replica'}: ${from} -> ${phase} after ${this.scheduler.counters.numSteps} steps: ` +
        `re-shard ${mib(reshard.bytesMoved)} (${mib(reshard.bytesFromHost)} from host, ${reshard.route}) ` +
        `in ${(endMs - startMs).toFixed(1)} ms, ${this.executor.numKvBlocks} KV blocks` +
        (this.options.describeQueues ? `, ${this.options.describeQueues()}` : ''),
    );
  }

  private async runSteps(): Promise<RequestOutput[]> {
    const { clock } = this.options;
    const depth = Math.min(this.scheduler.maxInFlight, maxStepsInFlight(this.executor));
    // Idle = time spent planning; the synchronous part of execute() (dispatch) is device time.
    while (this.inFlight.size < depth) {
      const scheduleStartMs = clock();
      const plan = this.scheduler.schedule();
      this.tally.times.idleMs += clock() - scheduleStartMs;
      if (!plan) break;
      this.launch(plan);
    }
    if (this.inFlight.size === 0) {
      throw new Error(
        `the scheduler planned nothing${this.scheduler.phase ? ` in the ${this.scheduler.phase} phase` : ''} with requests pending`,
      );
    }
    const settled = await Promise.race(this.inFlight.values());
    const endMs = clock();
    this.inFlight.delete(settled.plan.batch.stepId);
    if (this.inFlight.size === 0) this.tally.times.busyMs += endMs - this.busySinceMs;
    if ('error' in settled) throw settled.error;
    const outputs = this.scheduler.update(settled.plan, settled.result, endMs);
    this.account(settled.plan, settled.result, settled.startMs, endMs, settled.traceStartMs);
    const updateEndMs = clock();
    this.tally.times.idleMs += updateEndMs - endMs;
    this.tally.times[this.phaseKey()] += updateEndMs - this.phaseSinceMs!;
    this.phaseSinceMs = updateEndMs;
    return outputs;
  }

  private launch(plan: StepPlan): void {
    const startMs = this.options.clock();
    if (this.inFlight.size === 0) this.busySinceMs = startMs;
    const traceStartMs = this.options.trace?.recorder.now() ?? 0;
    // Settled objects, never rejections: a failure is rethrown when its turn comes, and a
    // step still in flight behind a failed one cannot cause an unhandled rejection.
    const settled = this.executor.execute(plan.batch).then(
      (result): Settled => ({ plan, startMs, traceStartMs, result }),
      (error: unknown): Settled => ({ plan, startMs, traceStartMs, error }),
    );
    this.inFlight.set(plan.batch.stepId, settled);
  }

  /** Counts the step's time, tokens and KV figures, and draws it on the trace. */
  private account(
    plan: StepPlan,
    result: StepResult,
    startMs: number,
    endMs: number,
    traceStartMs: number,
  ): void {
    const decodeOnly = this.tally.countStep(plan, result, endMs - startMs);
    const trace = this.options.trace;
    if (trace) {
      const category = this.scheduler.phase ?? (decodeOnly ? 'decode' : 'prefill');
      const traceEndMs = Math.max(traceStartMs, trace.recorder.now());
      recordStep(
        trace.recorder,
        trace.track,
        plan,
        category,
        traceStartMs,
        traceEndMs,
        { kv: result.kvTimings, deviceKv: result.deviceKv },
        this.executor.deviceRoles,
      );
    }
  }

  get stats(): EngineCoreStats {
    return this.tally.stats;
  }
}
