import type { StepKvTimings } from '@seesaw/protocol';
import type { StepPlan } from './step-plan.ts';
import type { Phase } from './step-scheduler.ts';
import type { TraceRecorder } from './trace-recorder.ts';

/** What a re-shard reports, as far as the trace shows it. */
export interface ReshardTraceStats {
  bytesMoved: number;
  bytesFromHost: number;
  numKvBlocks: number;
  route: string;
  devices?: ReadonlyArray<{ ms: number; bytesReceived: number; bytesSent: number; bytesFromHost: number }>;
}

/**
 * One step on `track` (category = its phase, args numTokens / numSeqs / phase), on each device's
 * track `${track} device i` when their roles are given (the coordinator's span from dispatch to
 * answer: a device's own compute is inside it, later stages' later), and, given the device's
 * kvTimings, its KV spans on `${track} kv`. kvTimings carries durations only:
 * prefetches and the wait for them are drawn from the step's start, write-backs and the wait
 * for their acks up to its end.
 */
export function recordStep(
  trace: TraceRecorder,
  track: string,
  plan: StepPlan,
  phase: Phase,
  startMs: number,
  endMs: number,
  kv?: StepKvTimings,
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
      args: { stepId: plan.batch.stepId },
    });
  }
}

/** A re-shard on `${track} reshard`, and each device's part (when reported) on `${track} device i`. */
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
      startMs,
      durationMs: device.ms,
      args: {
        bytesReceived: device.bytesReceived,
        bytesSent: device.bytesSent,
        bytesFromHost: device.bytesFromHost,
      },
    });
  }
}
