/**
 * A device's clock as the coordinator sees it. Right after hello the coordinator sends a few
 * clockProbes; each answer gives one NTP-style sample (coordinator send time t0, device time td,
 * coordinator receive time t1, all epoch ms). Assuming the device read its clock halfway through
 * the round trip, offset = td - (t0 + t1) / 2, wrong by at most (t1 - t0) / 2; the sample with
 * the shortest round trip is kept. Both sides read performance.timeOrigin + performance.now():
 * worker threads have their own timeOrigin, remote hosts their own wall clocks.
 */

/** Now on the coordinator's clock (epoch ms). */
export function coordinatorClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface ClockSample {
  /** Coordinator clock when the probe was sent. */
  sentAtMs: number;
  /** Device clock when it answered. */
  deviceMs: number;
  /** Coordinator clock when the answer arrived. */
  receivedAtMs: number;
}

export class DeviceClock {
  private constructor(
    /** Device clock minus coordinator clock, ms. */
    readonly offsetMs: number,
    /** Half the best round trip: the most the offset can be wrong by, ms. */
    readonly uncertaintyMs: number,
  ) {}

  /** The estimate from the sample with the shortest round trip. */
  static fromSamples(samples: readonly ClockSample[]): DeviceClock {
    if (samples.length === 0) throw new RangeError('a device clock needs at least one probe sample');
    for (const s of samples) {
      if (!(s.receivedAtMs >= s.sentAtMs) || !Number.isFinite(s.deviceMs))
        throw new RangeError(`clock sample ${JSON.stringify(s)}: the answer came before the probe`);
    }
    const best = samples.reduce((a, b) =>
      b.receivedAtMs - b.sentAtMs < a.receivedAtMs - a.sentAtMs ? b : a,
    );
    const roundTripMs = best.receivedAtMs - best.sentAtMs;
    return new DeviceClock(best.deviceMs - (best.sentAtMs + best.receivedAtMs) / 2, roundTripMs / 2);
  }

  /** A device clock reading on the coordinator's clock. */
  toCoordinatorMs(deviceMs: number): number {
    return deviceMs - this.offsetMs;
  }
}
