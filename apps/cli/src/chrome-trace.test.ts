import type { TraceEvent } from '@seesaw/coordinator';
import { describe, expect, it } from 'vitest';
import { chromeTraceOf, toChromeTrace, toChromeTraceOfRuns } from './chrome-trace.ts';

const EVENTS: TraceEvent[] = [
  {
    track: 'replica 0',
    name: 'prefill step',
    category: 'prefill',
    startMs: 1000,
    durationMs: 12.5,
    args: { numTokens: 256, numSeqs: 4, phase: 'prefill' },
  },
  { track: 'replica 0 kv', name: 'write-back', category: 'kv', startMs: 1005.25, durationMs: 9 },
  { track: 'replica 0 reshard', name: 'P2 -> T2', category: 'reshard', startMs: 1013, durationMs: 40 },
  { track: 'device 1', name: 'reshard', category: 'reshard', startMs: 1013.5, durationMs: 38.0005 },
  {
    track: 'replica 0',
    name: 'decode step',
    category: 'decode',
    startMs: 1053,
    durationMs: 2,
    args: { numTokens: 4, numSeqs: 4, phase: 'decode' },
  },
];

type AnyEvent = ReturnType<typeof chromeTraceOf>['traceEvents'][number];

describe('toChromeTrace', () => {
  it('writes valid JSON with one complete event per span, in microseconds from the first event', () => {
    const trace = JSON.parse(toChromeTrace(EVENTS, 'bench static:T2'));
    const complete = trace.traceEvents.filter((event: AnyEvent) => event.ph === 'X');
    expect(complete).toHaveLength(EVENTS.length);
    for (const event of complete) {
      expect(typeof event.ts).toBe('number');
      expect(event.dur).toBeGreaterThanOrEqual(0);
      expect(event.pid).toBe(1);
    }
    expect(complete.map((event: AnyEvent) => (event as { ts: number }).ts)).toEqual([
      0, 5250, 13000, 13500, 53000,
    ]);
    expect(complete[3].dur).toBeCloseTo(38000.5, 3);
    expect(complete[0]).toMatchObject({
      name: 'prefill step',
      cat: 'prefill',
      dur: 12500,
      args: { numTokens: 256, numSeqs: 4, phase: 'prefill' },
    });
    expect(trace.displayTimeUnit).toBe('ms');
  });

  it('names every track with a thread_name event and the process with process_name', () => {
    const trace = chromeTraceOf([{ name: 'run', events: EVENTS }]);
    const threadNames = new Map<number, string>();
    for (const event of trace.traceEvents) {
      if (event.ph === 'M' && event.name === 'thread_name' && 'name' in event.args) {
        threadNames.set(event.tid, event.args.name);
      }
    }
    expect([...threadNames.values()]).toEqual(['replica 0', 'replica 0 kv', 'replica 0 reshard', 'device 1']);
    for (const event of trace.traceEvents) {
      if (event.ph === 'X') expect(threadNames.has(event.tid)).toBe(true);
    }
    // Same track, same tid.
    const steps = trace.traceEvents.filter((event) => event.ph === 'X' && event.cat !== 'kv');
    expect(steps[0].tid).toBe(steps[3].tid);
    const processName = trace.traceEvents.find((event) => event.name === 'process_name');
    expect(processName?.args).toEqual({ name: 'run' });
  });

  it('puts each run of a comparison in its own process, each starting at 0', () => {
    const shifted = EVENTS.map((event) => ({ ...event, startMs: event.startMs + 50_000 }));
    const trace = JSON.parse(
      toChromeTraceOfRuns([
        { name: 'seesaw:P2-T2', events: EVENTS },
        { name: 'static:T2', events: shifted },
      ]),
    );
    const byPid = (pid: number) =>
      trace.traceEvents.filter((event: AnyEvent) => event.ph === 'X' && event.pid === pid);
    expect(byPid(1)).toHaveLength(5);
    expect(byPid(2)).toHaveLength(5);
    expect(byPid(2).map((event: { ts: number }) => event.ts)).toEqual(
      byPid(1).map((event: { ts: number }) => event.ts),
    );
  });

  it('clamps broken durations and keeps an empty run valid', () => {
    const trace = chromeTraceOf([
      {
        name: 'odd',
        events: [{ track: 't', name: 'x', category: 'wait', startMs: 5, durationMs: -3 }],
      },
      { name: 'empty', events: [] },
    ]);
    const complete = trace.traceEvents.filter((event) => event.ph === 'X');
    expect(complete).toEqual([expect.objectContaining({ ts: 0, dur: 0 })]);
    expect(() => JSON.parse(JSON.stringify(trace))).not.toThrow();
  });
});
