import type { DeviceKvReport, StepKvTimings } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { combineStepKv, movedKv } from './step-kv-combine.ts';

function timings(fields: Partial<StepKvTimings>): StepKvTimings {
  return { computeMs: 0, prefetchWaitMs: 0, prefetchMs: 0, writeBackMs: 0, writeBackWaitMs: 0, ...fields };
}

function report(device: number, ppStage: number, tpRank: number, kv: Partial<StepKvTimings>): DeviceKvReport {
  return { device, ppStage, tpRank, kv: timings(kv) };
}

describe('combineStepKv', () => {
  it('takes the slowest TP rank of a stage, adds stages along the step, sums transfers and bytes', () => {
    // D1T2P2: stage 0 = devices 0, 1; stage 1 = devices 2, 3.
    const seq = { prefetchesNeeded: 3, prefetchBytesNeeded: 300 };
    const combined = combineStepKv(
      [
        report(0, 0, 0, {
          computeMs: 10,
          prefetchWaitMs: 2,
          prefetchMs: 5,
          writeBackMs: 7,
          writeBackWaitMs: 4,
          ...seq,
          prefetchesLanded: 2,
          prefetchBytesLanded: 200,
        }),
        report(1, 0, 1, {
          computeMs: 12,
          prefetchWaitMs: 3,
          prefetchMs: 6,
          writeBackMs: 8,
          writeBackWaitMs: 5,
          ...seq,
          prefetchesLanded: 1,
          prefetchBytesLanded: 100,
        }),
        report(2, 1, 0, {
          computeMs: 9,
          prefetchWaitMs: 1,
          prefetchMs: 4,
          writeBackMs: 6,
          writeBackWaitMs: 1,
          ...seq,
          prefetchesLanded: 3,
          prefetchBytesLanded: 300,
        }),
        report(3, 1, 1, {
          computeMs: 8,
          prefetchWaitMs: 0.5,
          prefetchMs: 4,
          writeBackMs: 6,
          writeBackWaitMs: 2,
          ...seq,
          prefetchesLanded: 3,
          prefetchBytesLanded: 300,
        }),
      ],
      1,
    );
    expect(combined).toEqual({
      computeMs: 12 + 9,
      prefetchWaitMs: 3 + 1,
      prefetchMs: 5 + 6 + 4 + 4,
      writeBackMs: 7 + 8 + 6 + 6,
      // Only the last stage holds the step for its acknowledgements.
      writeBackWaitMs: 2,
      // Every device awaits the same 3 sequences; one of them landed on device 1 before the step.
      prefetchesNeeded: 3,
      prefetchesLanded: 1,
      prefetchBytesNeeded: 1200,
      prefetchBytesLanded: 900,
    });
  });

  it('gives one device its own figures, and tells a device that moved KV from one that sent zeros', () => {
    const own = timings({
      computeMs: 4,
      writeBackMs: 2,
      writeBackWaitMs: 1,
      prefetchesNeeded: 0,
      prefetchesLanded: 0,
    });
    expect(combineStepKv([{ device: 0, ppStage: 0, tpRank: 0, kv: own }], 0)).toEqual({
      ...own,
      prefetchBytesNeeded: 0,
      prefetchBytesLanded: 0,
    });
    expect(movedKv(timings({ computeMs: 4 }))).toBe(false);
    expect(movedKv(own)).toBe(true);
    expect(movedKv(timings({ spans: [{ name: 'compute', startMs: 1, endMs: 2 }] }))).toBe(true);
    // Stage 0 of a P2 alone moved KV: its wait for acknowledgements does not hold the step.
    expect(combineStepKv([{ device: 0, ppStage: 0, tpRank: 0, kv: own }], 1).writeBackWaitMs).toBe(0);
    expect(() => combineStepKv([], 0)).toThrow(/no reports/);
  });
});
