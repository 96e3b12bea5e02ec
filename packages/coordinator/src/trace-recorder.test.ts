import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../test/hashing-test-device.ts';
import { EOS, randomWorkload, VOCAB } from '../test/seesaw-test-support.ts';
import { ClusterEngine } from './cluster/cluster-engine.ts';
import { Engine, type ExecutionDevice } from './engine.ts';
import { TraceRecorder } from './trace-recorder.ts';

function timedDevice(clock: { now: number }, numKvBlocks = 64): ExecutionDevice {
  const device = new HashingTestDevice({ numKvBlocks, blockSize: 4, vocabSize: VOCAB });
  return {
    numKvBlocks,
    blockSize: 4,
    execute: async (batch: StepBatch) => {
      clock.now += 3;
      return device.execute(batch);
    },
  };
}

describe('TraceRecorder', () => {
  it('keeps events in order, names fresh tracks per prefix, and rejects bad spans', () => {
    let now = 10;
    const trace = new TraceRecorder(() => now);
    expect(trace.now()).toBe(10);
    now = 12;
    trace.record({ track: 't', name: 'a', category: 'kv', startMs: 10, durationMs: 2 });
    expect(trace.events).toEqual([{ track: 't', name: 'a', category: 'kv', startMs: 10, durationMs: 2 }]);
    expect([trace.claimTrack('engine'), trace.claimTrack('engine'), trace.claimTrack('x')]).toEqual([
      'engine 0',
      'engine 1',
      'x 0',
    ]);
    expect(() =>
      trace.record({ track: 't', name: 'b', category: 'wait', startMs: 0, durationMs: -1 }),
    ).toThrow(/bad start 0 or duration -1/);
    expect(() =>
      trace.record({ track: 't', name: 'c', category: 'wait', startMs: Number.NaN, durationMs: 1 }),
    ).toThrow();
    expect(new TraceRecorder().now()).toBeGreaterThan(0);
  });

  it('the static Engine records every step on its track, classified like its stats', async () => {
    const clock = { now: 0 };
    const trace = new TraceRecorder(() => clock.now);
    const engine = new Engine(timedDevice(clock), {
      maxModelLen: 80,
      eosTokenIds: [EOS],
      maxNumBatchedTokens: 16,
      clock: () => clock.now,
      trace,
      traceTrack: 'static',
    });
    for (const request of randomWorkload(3, { count: 6, maxPrompt: 30, maxTokens: 8 }))
      engine.addRequest(request);
    const stats = await engine.run();
    expect(trace.events).toHaveLength(stats.numSteps);
    expect(trace.events.every((event) => event.track === 'static' && event.durationMs === 3)).toBe(true);
    const count = (category: string) => trace.events.filter((event) => event.category === category).length;
    expect(count('prefill')).toBe(stats.numPrefillSteps);
    expect(count('decode')).toBe(stats.numDecodeSteps);
    const tokens = trace.events.reduce((sum, event) => sum + Number(event.args?.numTokens), 0);
    expect(tokens).toBe(stats.numScheduledTokens);
  });

  it("ClusterEngine's engines record on 'engine 0', 'engine 1', ... (replica-major)", async () => {
    const clock = { now: 0 };
    const trace = new TraceRecorder(() => clock.now);
    const cluster = new ClusterEngine([timedDevice(clock), timedDevice(clock)], 1, {
      maxModelLen: 80,
      eosTokenIds: [EOS],
      trace,
    });
    for (const request of randomWorkload(4, { count: 6, maxPrompt: 30, maxTokens: 8 }))
      cluster.addRequest(request);
    await cluster.run();
    const tracks = new Set(trace.events.map((event) => event.track));
    expect([...tracks].sort()).toEqual(['engine 0', 'engine 1']);
    const steps = cluster.engines.map((engine) => engine.stats.numSteps);
    expect(trace.events.filter((event) => event.track === 'engine 1')).toHaveLength(steps[1]);
  });
});
