import { deviceWorkerUrl } from '@seesaw/gpu-actor';
import { describe, expect, it } from 'vitest';
import { DeviceActorHandle } from './device-actor-handle.ts';
import { DeviceClock } from './device-clock.ts';

const TOKEN = 'device-clock-test';
/** performance.timeOrigin of two threads of one process may differ by this much (rounding). */
const TIME_ORIGIN_SLACK_MS = 2;

describe('DeviceClock', () => {
  it('takes the offset from the sample with the shortest round trip, uncertain by half of it', () => {
    const clock = DeviceClock.fromSamples([
      { sentAtMs: 1000, deviceMs: 6040, receivedAtMs: 1100 }, // 100 ms round trip
      { sentAtMs: 2000, deviceMs: 7003, receivedAtMs: 2004 }, // 4 ms: offset 7003 - 2002
      { sentAtMs: 3000, deviceMs: 8010, receivedAtMs: 3010 },
    ]);
    expect(clock.offsetMs).toBe(5001);
    expect(clock.uncertaintyMs).toBe(2);
    expect(clock.toCoordinatorMs(9001)).toBe(4000);
    expect(() => DeviceClock.fromSamples([])).toThrow(/at least one probe sample/);
    expect(() => DeviceClock.fromSamples([{ sentAtMs: 5, deviceMs: 1, receivedAtMs: 4 }])).toThrow(
      /the answer came before the probe/,
    );
  });

  it('recovers a device worker clock skewed by a known amount, within the round-trip bound', async () => {
    // Random, up to an hour either way; printed so a failure can be related to the skew it ran with.
    const skewMs = Math.round((Math.random() * 2 - 1) * 3_600_000 * 1000) / 1000;
    console.log(`device clock skew ${skewMs} ms`);
    // A worker thread copies the environment when it starts; only the device clock unit reads it.
    process.env.SEESAW_TEST_DEVICE_CLOCK_SKEW_MS = String(skewMs);
    let actor: DeviceActorHandle;
    try {
      actor = await DeviceActorHandle.spawn({
        workerUrl: deviceWorkerUrl(),
        name: 'skewed device',
        workerData: { token: TOKEN, deviceName: 'skewed device' },
      });
    } finally {
      delete process.env.SEESAW_TEST_DEVICE_CLOCK_SKEW_MS;
    }
    try {
      const { offsetMs, uncertaintyMs } = actor.clock;
      console.log(`estimated offset ${offsetMs.toFixed(3)} ms, +- ${uncertaintyMs.toFixed(3)} ms`);
      expect(Math.abs(offsetMs - skewMs)).toBeLessThanOrEqual(uncertaintyMs + TIME_ORIGIN_SLACK_MS);
      // A worker idle after hello answers a probe quickly.
      expect(uncertaintyMs).toBeLessThan(1000);
    } finally {
      await actor.close('abort');
    }
  });
});
