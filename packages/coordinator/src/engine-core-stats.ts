/**
 * What EngineCore counts over a run: wall time by activity (busy, idle, each phase, re-shards),
 * steps and tokens by kind, and the devices' KV transfer figures summed over steps.
 */
import type { StepResult } from '@seesaw/protocol';
import type { StepPlan } from './step-plan.ts';

/** Where a replica's step time went, by kind of step (EngineStats and EngineCoreStats both carry it). */
export interface StepTimeStats {
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

export interface EngineCoreStats extends StepTimeStats {
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

/** A step where every sequence computes one token and samples: pure decode. Any prompt chunk makes it prefill. */
export function isDecodeOnly(plan: StepPlan): boolean {
  return plan.chunks.every((chunk) => chunk.numNewTokens === 1 && chunk.isSampled);
}

export function numPlannedTokens(plan: StepPlan): number {
  return plan.chunks.reduce((sum, chunk) => sum + chunk.numNewTokens, 0);
}

/** Steps of one kind: how many, their summed wall time, and their planned tokens. */
interface Tally {
  numSteps: number;
  ms: number;
  numTokens: number;
}

/** EngineCore's running sums; `times` is added to by the loop itself, countStep by each answered step. */
export class EngineCoreTally {
  readonly times = {
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
  private readonly prefill: Tally = { numSteps: 0, ms: 0, numTokens: 0 };
  private readonly decode: Tally = { numSteps: 0, ms: 0, numTokens: 0 };

  /** Adds an answered step that took `ms`; returns whether it was decode-only. */
  countStep(plan: StepPlan, result: StepResult, ms: number): boolean {
    const decodeOnly = isDecodeOnly(plan);
    const tally = decodeOnly ? this.decode : this.prefill;
    tally.numSteps++;
    tally.ms += ms;
    tally.numTokens += numPlannedTokens(plan);
    const kv = result.kvTimings;
    if (kv) {
      const t = this.times;
      t.prefetchWaitMs += kv.prefetchWaitMs;
      t.writeBackWaitMs += kv.writeBackWaitMs;
      t.prefetchMs += kv.prefetchMs;
      t.writeBackMs += kv.writeBackMs;
      t.prefetchesNeeded += kv.prefetchesNeeded ?? 0;
      t.prefetchesLanded += kv.prefetchesLanded ?? 0;
      t.prefetchBytesNeeded += kv.prefetchBytesNeeded ?? 0;
      t.prefetchBytesLanded += kv.prefetchBytesLanded ?? 0;
    }
    return decodeOnly;
  }

  get stats(): EngineCoreStats {
    const { prefetchWaitMs, writeBackWaitMs } = this.times;
    return {
      ...this.times,
      numPrefillSteps: this.prefill.numSteps,
      prefillStepMs: this.prefill.ms,
      numPrefillStepTokens: this.prefill.numTokens,
      numDecodeSteps: this.decode.numSteps,
      decodeStepMs: this.decode.ms,
      numDecodeStepTokens: this.decode.numTokens,
      kvWaitMs: prefetchWaitMs + writeBackWaitMs,
    };
  }
}
