import type { StepResult } from '@seesaw/protocol';
import type { EngineRequest, RequestOutput } from './request.ts';
import type { SchedulerCounters } from './scheduler-counters.ts';
import type { StepPlan } from './step-plan.ts';

/** The parallel configuration a Seesaw replica runs in: layout 0 for prefill, layout 1 for decode. */
export type Phase = 'prefill' | 'decode';

/** Per-phase settings the driver passes on a switch (what the device reports for the new layout). */
export interface EnterPhaseOptions {
  /** Steps the device takes at once in the new layout (its pp); default: the configured maxInFlight. */
  maxInFlight?: number;
}

/**
 * What the engines and the planner's simulator drive: the static vLLM-style Scheduler and the
 * two-phase SeesawScheduler both implement it. No I/O: schedule() plans steps, update() applies
 * their results (in any order among the steps in flight).
 */
export interface StepScheduler {
  readonly blockSize: number;
  readonly counters: SchedulerCounters;
  /** 'prefill' / 'decode' for the seesaw policy; null for the static one. */
  readonly phase: Phase | null;
  /** Steps scheduled and not yet updated. */
  readonly numInFlight: number;
  /** Steps that may be in flight at once now. */
  readonly maxInFlight: number;
  /** Queues a request; throws RequestRejectedError (nothing queued) for one that can never run. */
  addRequest(request: EngineRequest, arrivalMs: number): void;
  hasUnfinishedRequests(): boolean;
  /**
   * The next step, or null when nothing can be scheduled until an in-flight step answers or a
   * phase switch happens. Never an empty batch.
   */
  schedule(): StepPlan | null;
  /** Applies a step's result; returns the requests that finished in it. */
  update(plan: StepPlan, result: StepResult, nowMs: number): RequestOutput[];
  /**
   * Set when the policy wants to switch and nothing is in flight (drained): the driver re-shards
   * the devices, then calls enterPhase. Always null for the static policy.
   */
  pendingSwitch(): Phase | null;
  enterPhase(phase: Phase, numKvBlocks: number, options?: EnterPhaseOptions): void;
}
