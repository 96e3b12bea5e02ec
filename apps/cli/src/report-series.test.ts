import type { TraceEvent } from '@seesaw/coordinator';
import { describe, expect, it } from 'vitest';
import { phaseRows, throughputSeries, timeRange } from './report-series.ts';
import { SeededRandom } from './seeded-random.ts';

const step = (
  track: string,
  category: 'prefill' | 'decode',
  startMs: number,
  durationMs: number,
  numTokens: number,
): TraceEvent => ({
  track,
  name: `${category} step`,
  category,
  startMs,
  durationMs,
  args: { numTokens, numSeqs: 1, phase: category },
});

describe('throughputSeries', () => {
  it('spreads each step over the buckets it overlaps, per phase', () => {
    const events = [
      step('replica 0', 'prefill', 500, 1000, 300),
      step('replica 0', 'decode', 1500, 500, 10),
      step('replica 1', 'decode', 2000, 0, 7),
    ];
    // Origin 500: the prefill step is [0, 1000) -> bucket 0; decode [1000, 1500) -> bucket 1;
    // the zero-length step at 1500 (the very end) counts whole in the last bucket.
    expect(throughputSeries(events)).toEqual([
      { startMs: 0, prefillTokensPerSecond: 300, decodeTokensPerSecond: 0 },
      { startMs: 1000, prefillTokensPerSecond: 0, decodeTokensPerSecond: 17 },
    ]);
    const halves = throughputSeries(events, 500);
    expect(halves.map((b) => b.prefillTokensPerSecond)).toEqual([300, 300, 0]);
    expect(halves.map((b) => b.decodeTokensPerSecond)).toEqual([0, 0, 34]);
  });

  it('conserves every token on random steps (float64 sum of bucket rates x bucket length)', () => {
    const seed = Date.now();
    console.log(`throughputSeries conservation seed ${seed}`);
    const generator = new SeededRandom(seed);
    const random = () => generator.nextFloat();
    for (let trial = 0; trial < 20; trial++) {
      const events: TraceEvent[] = [];
      let expected = 0;
      const numEvents = 1 + Math.floor(random() * 40);
      for (let i = 0; i < numEvents; i++) {
        const tokens = Math.floor(random() * 500);
        expected += tokens;
        events.push(
          step(
            `replica ${i % 2}`,
            random() < 0.5 ? 'prefill' : 'decode',
            random() * 9000,
            random() * 3000,
            tokens,
          ),
        );
      }
      events.push({ track: 'replica 0 kv', name: 'x', category: 'kv', startMs: 0, durationMs: 50 });
      const bucketMs = 250 + Math.floor(random() * 1000);
      const total = throughputSeries(events, bucketMs).reduce(
        (sum, b) => sum + ((b.prefillTokensPerSecond + b.decodeTokensPerSecond) * bucketMs) / 1000,
        0,
      );
      expect(Math.abs(total - expected)).toBeLessThanOrEqual(1e-9 * Math.max(1, expected));
    }
  });

  it('gives one empty bucket for no events', () => {
    expect(throughputSeries([])).toEqual([
      { startMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0 },
    ]);
    expect(timeRange([])).toEqual({ originMs: 0, endMs: 0 });
  });
});

describe('phaseRows', () => {
  it('merges consecutive spans of a phase and places re-shards on their replica row', () => {
    const events: TraceEvent[] = [
      step('replica 0', 'prefill', 100, 10, 64),
      step('replica 0', 'prefill', 112, 10, 64),
      { track: 'replica 0 reshard', name: 'P2 -> T2', category: 'reshard', startMs: 125, durationMs: 5 },
      { track: 'device 1', name: 'reshard', category: 'reshard', startMs: 125, durationMs: 4 },
      { track: 'replica 0 kv', name: 'prefetch', category: 'kv', startMs: 126, durationMs: 20 },
      step('replica 0', 'decode', 131, 2, 4),
      step('replica 0', 'decode', 134, 2, 4),
      step('replica 1', 'decode', 100, 3, 4),
    ];
    expect(phaseRows(events)).toEqual([
      {
        track: 'replica 0',
        bands: [
          { category: 'prefill', startMs: 0, endMs: 22 },
          { category: 'reshard', startMs: 25, endMs: 30 },
          { category: 'decode', startMs: 31, endMs: 36 },
        ],
      },
      { track: 'replica 1', bands: [{ category: 'decode', startMs: 0, endMs: 3 }] },
    ]);
  });
});
