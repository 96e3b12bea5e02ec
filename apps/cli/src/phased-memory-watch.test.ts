import type { Phase, PhasedDevice, ReshardStats } from '@seesaw/coordinator';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { PeakDeviceMemory, watchPeakMemory } from './phased-memory-watch.ts';

const MiB = 1024 ** 2;

/** Two devices; each switch answers the next entry of `answers`. */
class FakePhasedDevice implements PhasedDevice {
  readonly blockSize = 16;
  numKvBlocks = 100;
  phase: Phase = 'prefill';
  maxInFlight = 2;
  readonly executed: number[] = [];
  constructor(private readonly answers: Array<Array<Record<string, number>>>) {}
  async execute(batch: StepBatch): Promise<StepResult> {
    this.executed.push(batch.stepId);
    return { stepId: batch.stepId } as unknown as StepResult;
  }
  async switchTo(phase: Phase): Promise<ReshardStats> {
    this.phase = phase;
    this.numKvBlocks = phase === 'decode' ? 80 : 100;
    this.maxInFlight = phase === 'decode' ? 1 : 2;
    const devices = this.answers.shift() ?? [];
    return {
      ms: 1,
      bytesMoved: 0,
      bytesFromHost: 0,
      numKvBlocks: this.numKvBlocks,
      route: 'p2p',
      devices,
    } as unknown as ReshardStats;
  }
}

describe('PeakDeviceMemory', () => {
  it('takes the largest of every layout and of old KV plus transient weights', () => {
    // Start: 2 devices, 20 MiB weights + 200 MiB KV over both: 110 MiB each.
    const peak = new PeakDeviceMemory(2, { weightBytes: 20 * MiB, kvCacheBytes: 200 * MiB });
    expect(peak.bytes).toBe(110 * MiB);
    // Decode layout: device 1 ends at 15 + 90; while switching it held 25 MiB of weights on top of
    // its old 100 MiB of KV = 125 MiB.
    peak.observeSwitch([
      { weightBytes: 10 * MiB, kvCacheBytes: 95 * MiB, peakWeightBytes: 18 * MiB },
      { weightBytes: 15 * MiB, kvCacheBytes: 90 * MiB, peakWeightBytes: 25 * MiB },
    ]);
    expect(peak.bytes).toBe(125 * MiB);
    // Back: device 0's transient 40 MiB of weights over its decode KV of 95 MiB = 135 MiB.
    peak.observeSwitch([
      { weightBytes: 10 * MiB, kvCacheBytes: 100 * MiB, peakWeightBytes: 40 * MiB },
      { weightBytes: 10 * MiB, kvCacheBytes: 100 * MiB, peakWeightBytes: 20 * MiB },
    ]);
    expect(peak.bytes).toBe(135 * MiB);
  });
});

describe('watchPeakMemory', () => {
  it('passes everything through and reads each switch', async () => {
    const device = new FakePhasedDevice([
      [
        { device: 0, ms: 1, weightBytes: 10, kvCacheBytes: 50, peakWeightBytes: 30 },
        { device: 1, ms: 1, weightBytes: 10, kvCacheBytes: 50, peakWeightBytes: 20 },
      ],
      [{ device: 0, ms: 1, bytesReceived: 0, bytesSent: 0, bytesFromHost: 0 }],
    ]);
    const peak = new PeakDeviceMemory(2, { weightBytes: 20, kvCacheBytes: 60 });
    const watched = watchPeakMemory(device, peak);
    expect([watched.phase, watched.numKvBlocks, watched.maxInFlight, watched.blockSize]).toEqual([
      'prefill',
      100,
      2,
      16,
    ]);
    await watched.execute({ stepId: 7 } as unknown as StepBatch);
    expect(device.executed).toEqual([7]);
    const stats = await watched.switchTo('decode');
    expect(stats.numKvBlocks).toBe(80);
    expect([watched.phase, watched.numKvBlocks, watched.maxInFlight]).toEqual(['decode', 80, 1]);
    // Old KV 30 each + transient 30 = 60.
    expect(peak.bytes).toBe(60);
    // Answers with timings only leave the peak alone.
    await watched.switchTo('prefill');
    expect(peak.bytes).toBe(60);
  });
});
