import type { StepBatch, StepResult } from '@seesaw/protocol';
import type { EngineStats } from './engine.ts';
import { EngineCore, type EngineCoreStats, type ReshardStats } from './engine-core.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { SeesawScheduler, type SeesawSchedulerConfig } from './seesaw-scheduler.ts';
import type { Phase } from './step-scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

export type { ReshardDeviceStats, ReshardStats } from './engine-core.ts';
export type { Phase } from './step-scheduler.ts';

/** One replica able to run in either layout (layout 0 = prefill, 1 = decode). */
export interface PhasedDevice {
  readonly blockSize: number;
  /** Of the current layout. */
  readonly numKvBlocks: number;
  /**
   * Of the decode layout, when known before the first switch (its devices said at load): the
   * scheduler then refuses on arrival a request that could never fit it, instead of failing the
   * switch after a whole prefill phase.
   */
  readonly numDecodeKvBlocks?: number;
  readonly phase: Phase;
  /** pp of the current layout: steps it takes at once. */
  readonly maxInFlight: number;
  /** Runs steps in arrival order, so a pipelined layout may be sent one more (ReplicaExecutor.queuesSteps). */
  readonly queuesSteps?: boolean;
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

/** EngineCoreStats' times and KV figures, plus the Seesaw scheduler's own counts. */
export interface SeesawEngineStats extends EngineStats, EngineCoreStats {
  numSwitches: number;
  numWriteBacks: number;
  numPrefetches: number;
}

/**
 * The Seesaw loop for one replica: a SeesawScheduler planning steps and a PhasedDevice running
 * them, driven by EngineCore (re-shard when the scheduler drained and asks; else up to the
 * layout's pp steps in flight).
 */
export class SeesawEngine {
  readonly scheduler: SeesawScheduler;
  private readonly core: EngineCore<SeesawScheduler>;

  constructor(device: PhasedDevice, options: SeesawEngineOptions) {
    if (device.phase !== 'prefill')
      throw new Error(`the device must start in the prefill layout, not ${device.phase}`);
    const { clock, trace, replicaIndex, log, hostKv, ...schedulerOptions } = options;
    const numDecodeKvBlocks = schedulerOptions.numDecodeKvBlocks ?? device.numDecodeKvBlocks;
    this.scheduler = new SeesawScheduler({
      ...schedulerOptions,
      ...(numDecodeKvBlocks !== undefined ? { numDecodeKvBlocks } : {}),
      blockSize: device.blockSize,
      numKvBlocks: device.numKvBlocks,
      hostKv: { ...hostKv, tokensPerSlot: device.blockSize },
      maxInFlight: device.maxInFlight,
    });
    const track = `replica ${replicaIndex ?? 0}`;
    this.core = new EngineCore(this.scheduler, phasedExecutor(device), {
      clock: clock ?? (() => performance.now()),
      trace: trace ? { recorder: trace, track } : null,
      log: log ?? (() => {}),
      latchFailures: true,
      describeQueues: () => `${this.scheduler.numParked} parked, ${this.scheduler.numWaiting} waiting`,
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
    this.core.addRequest(request);
  }

  hasUnfinishedRequests(): boolean {
    return this.core.hasUnfinishedRequests();
  }

  /** One switch, or starts steps and applies the first to answer; returns requests finished. */
  step(): Promise<RequestOutput[]> {
    return this.core.step();
  }

  /** Steps (switching as the policy says) until everything queued is done. */
  async run(onFinished?: (out: RequestOutput) => void): Promise<SeesawEngineStats> {
    await this.core.run(onFinished);
    return this.stats;
  }

  get stats(): SeesawEngineStats {
    return { ...this.scheduler.counters, ...this.core.stats };
  }
}

/** The PhasedDevice seen as EngineCore's executor: its pp is the batch queue's depth. */
function phasedExecutor(device: PhasedDevice) {
  return {
    get blockSize() {
      return device.blockSize;
    },
    get numKvBlocks() {
      return device.numKvBlocks;
    },
    get maxConcurrentBatches() {
      return device.maxInFlight;
    },
    get queuesSteps() {
      return device.queuesSteps;
    },
    get deviceRoles() {
      return device.deviceRoles;
    },
    execute: (batch: StepBatch): Promise<StepResult> => device.execute(batch),
    switchTo: (phase: Phase): Promise<ReshardStats> => device.switchTo(phase),
  };
}
