import { EngineCore, type StepScheduler, type TraceEvent } from '@seesaw/coordinator';
import type { DeviceProfile } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';
import type { ReplicaLayout } from './replica-layout.ts';
import type { ReshardEstimate } from './reshard-cost.ts';
import { SimulatedReplicaExecutor } from './simulated-replica-executor.ts';
import { VirtualClock } from './virtual-clock.ts';

/** One replica to simulate: its scheduler (the engine's own policy) and the layouts it runs on. */
export interface ReplicaSimulationInput {
  costs: ModelCosts;
  device: DeviceProfile;
  blockSize: number;
  /** [static layout] or [prefill layout, decode layout]. */
  layouts: readonly ReplicaLayout[];
  /** Device KV blocks per layout. */
  numKvBlocks: readonly number[];
  /** Requests already queued; static or Seesaw policy, its maxInFlight the layout's pp. */
  scheduler: StepScheduler;
  /** Seesaw only: the cost of switching from layout `from` to layout `to`. */
  reshard?: (from: number, to: number) => ReshardEstimate;
  /** Events go here when given (simulated ms). */
  trace: TraceEvent[] | null;
  track: string;
  /** Give up once simulated time passes this (the search's cut for hopeless candidates). */
  stopAfterSeconds?: number;
}

export interface ReplicaSimulationResult {
  elapsedSeconds: number;
  numFinished: number;
  numSteps: number;
  numSwitches: number;
  prefillSeconds: number;
  decodeSeconds: number;
  reshardSeconds: number;
  kvWaitSeconds: number;
  /** Stopped at stopAfterSeconds with work left: elapsedSeconds is a lower bound. */
  truncated: boolean;
}

/**
 * Runs one replica through the real engine loop (EngineCore) with a simulated executor on a
 * virtual clock. Each EngineCore.step() fills the batch queue (the executor books each step's
 * finish on the clock) and then waits for exactly one step or switch to answer; the driver
 * moves the clock to the earliest booked time, which answers exactly that one.
 */
export async function simulateReplica(input: ReplicaSimulationInput): Promise<ReplicaSimulationResult> {
  const { scheduler } = input;
  const clock = new VirtualClock();
  const executor = new SimulatedReplicaExecutor({
    costs: input.costs,
    device: input.device,
    blockSize: input.blockSize,
    layouts: input.layouts,
    numKvBlocks: input.numKvBlocks,
    startPhase: scheduler.phase,
    reshard: input.reshard,
    clock,
    trace: input.trace,
    track: input.track,
  });
  const core = new EngineCore(scheduler, executor, {
    clock: () => clock.now * 1000,
    trace: null,
    log: () => {},
    latchFailures: true,
  });
  const stopAfter = input.stopAfterSeconds ?? Number.POSITIVE_INFINITY;
  let numFinished = 0;
  let truncated = false;
  while (core.hasUnfinishedRequests()) {
    if (clock.now > stopAfter) {
      truncated = true;
      break;
    }
    const stepped = core.step();
    // Nothing booked: the step failed (its error names why) before reaching the executor.
    if (clock.numPending > 0) clock.advance();
    numFinished += (await stepped).length;
  }
  const stats = core.stats;
  const isSeesaw = input.layouts.length > 1;
  return {
    elapsedSeconds: clock.now,
    numFinished,
    numSteps: stats.numPrefillSteps + stats.numDecodeSteps,
    numSwitches: executor.numSwitches,
    prefillSeconds: isSeesaw ? stats.prefillMs / 1000 : 0,
    decodeSeconds: isSeesaw ? stats.decodeMs / 1000 : 0,
    reshardSeconds: stats.reshardMs / 1000,
    kvWaitSeconds: stats.prefetchWaitMs / 1000,
    truncated,
  };
}
