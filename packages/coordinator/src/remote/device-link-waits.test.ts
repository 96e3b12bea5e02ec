import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeviceLinkWaits } from './device-link-waits.ts';

class FakeLink {
  closedWith: string | undefined;
  close(reason: string): void {
    this.closedWith = reason;
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DeviceLinkWaits', () => {
  it('hands each dialled-back link to the wait for its job and device', async () => {
    const waits = new DeviceLinkWaits<FakeLink>();
    const first = waits.expect(3, 0, 60_000);
    const second = waits.expect(3, 1, 60_000);
    const a = new FakeLink();
    const b = new FakeLink();
    waits.route(3, 1, b);
    waits.route(3, 0, a);
    await expect(first).resolves.toBe(a);
    await expect(second).resolves.toBe(b);
    expect(waits.numWaiting).toBe(0);
    expect(a.closedWith).toBeUndefined();
  });

  it('closes a link nobody waits for, naming job and device', () => {
    const waits = new DeviceLinkWaits<FakeLink>();
    const stray = new FakeLink();
    waits.route(9, 2, stray);
    expect(stray.closedWith).toBe('no job 9 waits for device 2');
  });

  it('times a wait out, and cancels only the ended job’s waits', async () => {
    vi.useFakeTimers();
    const waits = new DeviceLinkWaits<FakeLink>();
    const late = waits.expect(1, 0, 500);
    const cancelled = waits.expect(2, 0, 60_000);
    const other = waits.expect(12, 0, 60_000); // job 12 is not job 1's or 2's prefix match
    vi.advanceTimersByTime(501);
    await expect(late).rejects.toThrow('job 1: device 0 did not connect within 500 ms');
    waits.cancel(2, 'the job failed');
    await expect(cancelled).rejects.toThrow('job 2: the job failed');
    expect(waits.numWaiting).toBe(1);
    const link = new FakeLink();
    waits.route(12, 0, link);
    await expect(other).resolves.toBe(link);
  });
});
