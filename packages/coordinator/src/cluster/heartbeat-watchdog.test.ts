import { afterEach, describe, expect, it, vi } from 'vitest';
import { HeartbeatWatchdog } from './heartbeat-watchdog.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('HeartbeatWatchdog', () => {
  it('beats each interval while the actor is heard, and reports silence past the timeout once', () => {
    vi.useFakeTimers();
    const watchdog = new HeartbeatWatchdog(100, 350);
    const sent: number[] = [];
    const silences: Array<[number, number]> = [];
    watchdog.start(
      (seq) => sent.push(seq),
      (silentMs, timeoutMs) => silences.push([silentMs, timeoutMs]),
    );
    vi.advanceTimersByTime(300);
    expect(sent).toEqual([0, 1, 2]);
    watchdog.heard(); // heard at 300: the deadline moves to 650
    vi.advanceTimersByTime(300);
    expect(sent).toEqual([0, 1, 2, 3, 4, 5]);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(200); // silent 400 ms at 700
    expect(silences).toEqual([[400, 350]]);
    vi.advanceTimersByTime(1000); // stopped: no more beats, no second report
    expect(sent).toHaveLength(6);
    expect(silences).toHaveLength(1);
  });

  it('stops beating when stopped', () => {
    vi.useFakeTimers();
    const watchdog = new HeartbeatWatchdog(100, 1000);
    const sent: number[] = [];
    watchdog.start(
      (seq) => sent.push(seq),
      () => {},
    );
    vi.advanceTimersByTime(250);
    watchdog.stop();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([0, 1]);
  });
});
