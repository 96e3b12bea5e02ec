import { describe, expect, it } from 'vitest';
import {
  estimateRemainingMs,
  formatDuration,
  formatProgressBar,
  formatProgressLine,
  outputTokensPerSecond,
  PLAIN_INTERVAL_MS,
  ProgressReporter,
} from './progress.ts';

describe('progress formatting', () => {
  it('formats durations as m:ss and h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(12_999)).toBe('0:12');
    expect(formatDuration(90_000)).toBe('1:30');
    expect(formatDuration(3_600_000 + 5 * 60_000 + 7_000)).toBe('1:05:07');
    expect(formatDuration(-5)).toBe('0:00');
  });

  it('draws the bar, request count, output tok/s, elapsed and a token-based ETA', () => {
    // 12 s for 2000 of 12000 token positions: 10000 left at the same rate is 60 s.
    const snapshot = {
      numDone: 12,
      numTotal: 100,
      numOutputTokens: 4140,
      numWorkDone: 2000,
      numWorkTotal: 12_000,
      elapsedMs: 12_000,
    };
    expect(formatProgressBar(snapshot, 10)).toBe(
      '[#.........] 12/100 req | 345 tok/s | 0:12 elapsed | ETA 1:00',
    );
    expect(formatProgressBar({ ...snapshot, numDone: 50 }, 10)).toMatch(/^\[#####\.\.\.\.\.\] 50\/100 req/);
    expect(formatProgressLine(snapshot)).toBe('progress: 12/100 req | 345 tok/s | 0:12 elapsed | ETA 1:00');
  });

  it('has no ETA before the first token and a full bar at the end', () => {
    const start = {
      numDone: 0,
      numTotal: 5,
      numOutputTokens: 0,
      numWorkDone: 0,
      numWorkTotal: 100,
      elapsedMs: 0,
    };
    expect(estimateRemainingMs(start)).toBeNull();
    expect(outputTokensPerSecond(start)).toBe(0);
    expect(formatProgressBar(start, 4)).toBe('[....] 0/5 req | 0 tok/s | 0:00 elapsed | ETA --:--');
    const end = {
      numDone: 5,
      numTotal: 5,
      numOutputTokens: 50,
      numWorkDone: 100,
      numWorkTotal: 100,
      elapsedMs: 2_000,
    };
    expect(formatProgressBar(end, 4)).toBe('[####] 5/5 req | 25 tok/s | 0:02 elapsed | ETA 0:00');
    const empty = { ...start, numTotal: 0, elapsedMs: 1 };
    expect(formatProgressBar(empty, 4)).toMatch(/^\[####\]/);
  });

  it('never estimates a negative remaining time', () => {
    const over = {
      numDone: 1,
      numTotal: 1,
      numOutputTokens: 1,
      numWorkDone: 120,
      numWorkTotal: 100,
      elapsedMs: 1000,
    };
    expect(estimateRemainingMs(over)).toBe(0);
  });
});

describe('ProgressReporter', () => {
  function fakeStream(isTTY: boolean) {
    const writes: string[] = [];
    return { isTTY, writes, write: (text: string) => writes.push(text) };
  }
  const counts = (numDone: number, numOutputTokens: number) => ({
    numDone,
    numOutputTokens,
    numWorkDone: numDone * 10,
    numWorkTotal: 100,
  });

  it('prints a plain line every interval when not a TTY, and a final one', () => {
    let now = 1000;
    const stream = fakeStream(false);
    const reporter = new ProgressReporter(stream, 10, () => now);
    reporter.update(counts(1, 10));
    expect(stream.writes).toEqual([]);
    now += PLAIN_INTERVAL_MS;
    reporter.update(counts(2, 20));
    now += 1000;
    reporter.update(counts(3, 30));
    reporter.finish();
    expect(stream.writes).toEqual([
      'progress: 2/10 req | 4 tok/s | 0:05 elapsed | ETA 0:20\n',
      'progress: 3/10 req | 5 tok/s | 0:06 elapsed | ETA 0:14\n',
    ]);
  });

  it('redraws the bar in place on a TTY and ends with a newline', () => {
    let now = 0;
    const stream = fakeStream(true);
    const reporter = new ProgressReporter(stream, 2, () => now);
    now = 50;
    reporter.update(counts(1, 5)); // within the redraw interval: skipped
    now = 1000;
    reporter.update(counts(1, 5));
    reporter.finish();
    expect(stream.writes[0].startsWith('\r[')).toBe(true);
    expect(stream.writes[0]).toContain('] 0/2 req ');
    expect(stream.writes[0].endsWith('\u001b[K')).toBe(true);
    expect(stream.writes).toHaveLength(4);
    expect(stream.writes[1]).toContain('1/2 req | 5 tok/s | 0:01 elapsed | ETA 0:09');
    expect(stream.writes[3]).toBe('\n');
  });
});
