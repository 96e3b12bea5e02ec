import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { PipelineTimeline } from './pipeline-timeline.ts';

describe('PipelineTimeline', () => {
  it('equal stages: n steps on p stages take (n + p - 1) stage times', () => {
    const timeline = new PipelineTimeline(4, 0);
    let end = 0;
    for (let i = 0; i < 10; i++) end = timeline.run(0, [1, 1, 1, 1]).end;
    expect(end).toBe(13);
  });

  it('matches a brute-force tick simulation on random durations', () => {
    const seed = Date.now() >>> 0;
    const random = new Xoshiro128(seed);
    const stages = 3;
    // Integer durations so a unit-tick simulation is exact.
    const steps = Array.from({ length: 12 }, () => ({
      ready: Math.floor(random.nextFloat() * 20),
      durations: Array.from({ length: stages }, () => 1 + Math.floor(random.nextFloat() * 5)),
    }));
    steps.sort((a, b) => a.ready - b.ready);
    const timeline = new PipelineTimeline(stages, 0);
    const got = steps.map((step) => timeline.run(step.ready, step.durations).end);
    // Tick simulation: each stage holds a FIFO queue; a stage works on its head for its duration.
    const queues: number[][] = Array.from({ length: stages }, () => []);
    const remaining = steps.map((step) => [...step.durations]);
    const ends = steps.map(() => -1);
    for (let tick = 0; ends.includes(-1); tick++) {
      steps.forEach((step, i) => {
        if (step.ready === tick) queues[0].push(i);
      });
      const moved: Array<[number, number]> = [];
      for (let s = 0; s < stages; s++) {
        const head = queues[s][0];
        if (head === undefined) continue;
        remaining[head][s]--;
        if (remaining[head][s] === 0) {
          queues[s].shift();
          if (s + 1 < stages) moved.push([s + 1, head]);
          else ends[head] = tick + 1;
        }
      }
      // Handed on at the end of the tick: the next stage starts it on the next tick.
      for (const [s, i] of moved) queues[s].push(i);
    }
    expect(got, `seed ${seed}`).toEqual(ends);
  });
});
