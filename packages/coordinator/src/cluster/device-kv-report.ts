/** One device's KV timings for a step, as a replica reports them (StepResult.deviceKv). */
import type { DeviceKvReport, StepKvTimings } from '@seesaw/protocol';
import type { DeviceClock } from './device-clock.ts';

/** A device's KV report with its spans on the coordinator's clock (dropped when its clock is unknown). */
export function deviceKvReport(
  rank: { device: number; ppStage: number; tpRank: number },
  kv: StepKvTimings,
  clock: DeviceClock | undefined,
): DeviceKvReport {
  const { spans, ...timings } = kv;
  const report: DeviceKvReport = {
    device: rank.device,
    ppStage: rank.ppStage,
    tpRank: rank.tpRank,
    kv: timings,
  };
  if (clock && spans) {
    report.kv.spans = spans.map((span) => ({
      ...span,
      startMs: clock.toCoordinatorMs(span.startMs),
      endMs: clock.toCoordinatorMs(span.endMs),
    }));
  }
  return report;
}
