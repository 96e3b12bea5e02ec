import { describe, expect, it } from 'vitest';
import { seesawPhaseTimeline } from './seesaw-phase-timeline.ts';
import type { TraceCategory, TraceEvent } from './trace-recorder.ts';

const step = (category: TraceCategory, startMs: number, durationMs: number): TraceEvent => ({
  track: 'replica 0',
  name: `${category} step`,
  category,
  startMs,
  durationMs,
});
const compute = (device: number, startMs: number, durationMs: number): TraceEvent => ({
  track: `replica 0 device ${device} kv`,
  name: 'compute',
  category: 'kv',
  startMs,
  durationMs,
});

describe('seesawPhaseTimeline', () => {
  it('splits phases and finds each device stage fill, bubbles and drain', () => {
    // Two stages, three micro-batches of 10 ms a stage; stage 0 idles 5 ms before its third
    // (a bubble), stage 1 fills for 10 ms; then a re-shard and two decode steps.
    const events: TraceEvent[] = [
      step('prefill', 0, 20),
      step('prefill', 1, 29),
      step('prefill', 15, 30),
      compute(0, 0, 10),
      compute(0, 10, 10),
      compute(0, 25, 10),
      compute(1, 10, 10),
      compute(1, 20, 10),
      compute(1, 35, 10),
      { track: 'replica 0 reshard', name: 'reshard', category: 'reshard', startMs: 45, durationMs: 5 },
      step('decode', 50, 8),
      step('decode', 58, 4),
      compute(0, 50, 7),
      compute(1, 50, 7),
      compute(0, 58, 3),
      compute(1, 58, 3),
      { ...step('prefill', 0, 100), track: 'replica 1' },
    ];
    const [prefill, decode, ...rest] = seesawPhaseTimeline(events, 0);
    expect(rest).toEqual([]);
    expect(prefill).toMatchObject({ phase: 'prefill', startMs: 0, durationMs: 45, numSteps: 3 });
    expect(prefill.medianStepMs).toBe(29);
    expect(prefill.devices).toEqual([
      { device: 0, computeMs: 30, fillMs: 0, bubbleMs: 5, drainMs: 10 },
      { device: 1, computeMs: 30, fillMs: 10, bubbleMs: 5, drainMs: 0 },
    ]);
    expect(decode).toMatchObject({ phase: 'decode', startMs: 50, durationMs: 12, numSteps: 2 });
    expect(decode.firstStepsMs).toEqual([8, 4]);
    expect(decode.devices.map((device) => device.bubbleMs)).toEqual([1, 1]);
  });

  it('lists only devices that reported every step, and no phases for an unknown replica', () => {
    const steps = [step('prefill', 0, 5), step('prefill', 5, 5)];
    expect(seesawPhaseTimeline(steps, 0).map((phase) => phase.devices)).toEqual([[]]);
    const partly = seesawPhaseTimeline([...steps, compute(0, 0, 5), compute(1, 0, 5), compute(1, 5, 5)], 0);
    expect(partly[0].devices.map((device) => device.device)).toEqual([1]);
    expect(seesawPhaseTimeline([step('prefill', 0, 5)], 3)).toEqual([]);
  });
});
