/**
 * The device worker's own clock for the spans it reports: ms since the epoch as this thread sees
 * it (performance.timeOrigin + performance.now(); each worker thread has its own timeOrigin, a
 * remote host its own wall clock). The coordinator maps these times onto its clock with the
 * offset it estimates from clockProbe / clockReply right after hello.
 *
 * SEESAW_TEST_DEVICE_CLOCK_SKEW_MS (tests only, read here and nowhere else) shifts this clock by
 * a known amount, so a test can check that the coordinator recovers the offset.
 */

const skewMs = Number(process.env.SEESAW_TEST_DEVICE_CLOCK_SKEW_MS ?? 0) || 0;

/** Now on the device clock. */
export function deviceClockMs(): number {
  return deviceTimeOf(performance.now());
}

/** A performance.now() reading of this thread on the device clock. */
export function deviceTimeOf(performanceMs: number): number {
  return performance.timeOrigin + performanceMs + skewMs;
}
