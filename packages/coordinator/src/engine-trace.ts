import type { DeviceKvReport, StepKvTimings } from '@seesaw/protocol';
import type { ReshardDeviceStats } from './engine-core.ts';
import type { StepPlan } from './step-plan.ts';
import type { Phase } from './step-scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

/** What a re-shard reports, as far as the trace shows it. */
export interface ReshardTraceStats {
  bytesMoved: number;
  bytesFromHost: number;
  numKvBlocks: number;
  route: string;
  devices?: ReadonlyArray<ReshardDeviceStats>;
}

/** What a step's devices reported about their KV work. */
export interface StepKvTrace {
  /** The combined timings (engine totals). */
  kv?: StepKvTimings;
  /** Each device's own report, spans on the coordinator's epoch clock. */
  deviceKv?: readonly DeviceKvReport[];
}

/**
 * One step on `track` (category = its phase, args numTokens / numSeqs / phase), on each device's
 * track `${track} device i` when their roles are given (the coordinator's span from dispatch to
 * answer: a device's own compute is inside it, later stages' later). Each device's own spans
 * (compute, every prefetch issue -> landed, prefetch wait, write-backs issue -> last ack and the
 * wait for them), measured on its clock and mapped onto the coordinator's, go on
 * `${track} device i kv`. Without device spans (a device that reports durations only) the
 * combined durations are drawn on `${track} kv` from the step's start (prefetches and the wait
 * for them) or up to its end (write-backs and their wait).
 */
export function recordStep(
  trace: TraceRecorder,
  track: string,
  plan: StepPlan,
  phase: Phase,
  startMs: number,
  endMs: number,
  kvTrace?: StepKvTrace,
  deviceRoles?: readonly string[],
): void {
  const numTokens = plan.chunks.reduce((sum, chunk) => sum + chunk.numNewTokens, 0);
  const step = {
    name: `${phase} step ${plan.batch.stepId}`,
    category: phase,
    startMs,
    durationMs: Math.max(0, endMs - startMs),
  };
  const args = { numTokens, numSeqs: plan.batch.seqs.length, phase };
  trace.record({ track, ...step, args });
  for (const [index, role] of (deviceRoles ?? []).entries())
    trace.record({ track: `${track} device ${index}`, ...step, args: { ...args, role } });
  const stepId = plan.batch.stepId;
  const withSpans = (kvTrace?.deviceKv ?? []).filter((report) => report.kv.spans);
  if (withSpans.length > 0) {
    for (const report of withSpans)
      recordDeviceSpans(trace, `${track} device ${report.device} kv`, phase, stepId, report);
    return;
  }
  const kv = kvTrace?.kv;
  if (!kv) return;
  const spans: Array<[string, 'kv' | 'wait', number, boolean]> = [
    ['prefetch', 'kv', kv.prefetchMs, true],
    ['prefetch wait', 'wait', kv.prefetchWaitMs, true],
    ['write-back', 'kv', kv.writeBackMs, false],
    ['write-back wait', 'wait', kv.writeBackWaitMs, false],
  ];
  for (const [name, category, durationMs, isAtStart] of spans) {
    if (!(durationMs > 0)) continue;
    trace.record({
      track: `${track} kv`,
      name,
      category,
      startMs: isAtStart ? startMs : endMs - durationMs,
      durationMs,
      args: { stepId },
    });
  }
}

/** One device's own spans of a step, from its (clock-mapped) timestamps. */
function recordDeviceSpans(
  trace: TraceRecorder,
  track: string,
  phase: Phase,
  stepId: number,
  report: DeviceKvReport,
): void {
  for (const span of report.kv.spans ?? []) {
    const category = span.name === 'compute' ? phase : span.name.endsWith('wait') ? 'wait' : 'kv';
    trace.record({
      track,
      name: span.name,
      category,
      startMs: trace.fromEpochMs(span.startMs),
      durationMs: span.endMs - span.startMs,
      args: { stepId, stage: report.ppStage, tpRank: report.tpRank },
    });
  }
}

/**
 * A re-shard on `${track} reshard`, and each device's part (when reported) on `${track} device i`,
 * from the device's own start and end (mapped onto the coordinator's clock) where it sent them.
 */
export function recordReshard(
  trace: TraceRecorder,
  track: string,
  from: Phase,
  to: Phase,
  startMs: number,
  endMs: number,
  stats: ReshardTraceStats,
): void {
  const name = `reshard ${from} -> ${to}`;
  trace.record({
    track: `${track} reshard`,
    name,
    category: 'reshard',
    startMs,
    durationMs: Math.max(0, endMs - startMs),
    args: {
      bytesMoved: stats.bytesMoved,
      bytesFromHost: stats.bytesFromHost,
      numKvBlocks: stats.numKvBlocks,
      route: stats.route,
    },
  });
  for (const [index, device] of (stats.devices ?? []).entries()) {
    trace.record({
      track: `${track} device ${index}`,
      name,
      category: 'reshard',
      // The device's own start and end where it reported them, else its duration from the start.
      startMs: device.startMs === undefined ? startMs : trace.fromEpochMs(device.startMs),
      durationMs:
        device.startMs === undefined || device.endMs === undefined
          ? device.ms
          : device.endMs - device.startMs,
      args: {
        bytesReceived: device.bytesReceived,
        bytesSent: device.bytesSent,
        bytesFromHost: device.bytesFromHost,
      },
    });
  }
}
