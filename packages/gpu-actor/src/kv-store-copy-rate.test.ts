import { describe, expect, it } from 'vitest';
import { measureKvStoreCopyRate } from './kv-store-copy-rate.ts';

describe('measureKvStoreCopyRate (quick)', () => {
  it('moves KV through a real kv-store worker on the shared-memory path and fits a rate and a fixed cost', async () => {
    const rate = await measureKvStoreCopyRate(true);
    // Only signs and finiteness: the figures are timings on a shared machine.
    expect(Number.isFinite(rate.bytesPerSecond)).toBe(true);
    expect(rate.bytesPerSecond).toBeGreaterThan(0);
    expect(rate.latencySeconds).toBeGreaterThanOrEqual(0);
    expect(rate.latencySeconds).toBeLessThan(10);
  }, 60_000);
});
