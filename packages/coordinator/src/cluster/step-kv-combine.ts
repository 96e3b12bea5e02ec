/**
 * One step's KV timings from every device of a replica, combined without counting overlapping
 * work twice:
 * - Waits stall the step. TP ranks of one stage run side by side, so a stage waits as long as its
 *   slowest rank (max). Stages run one after another on the step's path, and a later stage
 *   reports only the prefetch wait after its input arrived (device-worker-step-runner), so stage
 *   stalls add up. Write-back waits count on the last stage only: an earlier stage hands its
 *   output on and does not hold the step for its acknowledgements.
 * - Compute follows the same path: max over a stage's ranks, summed over stages.
 * - Transfer times and bytes are per device (each device holds its own layers x KV heads, so
 *   each moves distinct bytes) and sum.
 * - Sequences are not per device: every device holds a slice of every sequence's KV, so each
 *   awaits the same prefetched sequences (max), and a sequence's KV is all there only where it
 *   landed on every device: at most the smallest landed count (min; exact where the devices
 *   agree, which is the rule, since they are issued together).
 */
import type { DeviceKvReport, StepKvTimings } from '@seesaw/protocol';

/** Whether a report says the device moved any KV in the step (a device with none sends zeros). */
export function movedKv(kv: StepKvTimings): boolean {
  return (
    (kv.spans?.length ?? 0) > 0 ||
    kv.prefetchWaitMs + kv.prefetchMs + kv.writeBackMs + kv.writeBackWaitMs > 0 ||
    (kv.prefetchesNeeded ?? 0) > 0
  );
}

/** `reports` of the devices that moved KV in the step; `lastStage` is the layout's (pp - 1). */
export function combineStepKv(reports: readonly DeviceKvReport[], lastStage: number): StepKvTimings {
  if (reports.length === 0) throw new RangeError('combineStepKv: no reports');
  const byStage = new Map<number, StepKvTimings[]>();
  for (const r of reports) byStage.set(r.ppStage, [...(byStage.get(r.ppStage) ?? []), r.kv]);
  const alongStages = (field: (kv: StepKvTimings) => number) =>
    [...byStage.values()].reduce((sum, stage) => sum + Math.max(...stage.map(field)), 0);
  const sum = (field: (kv: StepKvTimings) => number) => reports.reduce((total, r) => total + field(r.kv), 0);
  return {
    computeMs: alongStages((kv) => kv.computeMs),
    prefetchWaitMs: alongStages((kv) => kv.prefetchWaitMs),
    prefetchMs: sum((kv) => kv.prefetchMs),
    writeBackMs: sum((kv) => kv.writeBackMs),
    writeBackWaitMs: Math.max(0, ...(byStage.get(lastStage) ?? []).map((kv) => kv.writeBackWaitMs)),
    prefetchesNeeded: Math.max(...reports.map((r) => r.kv.prefetchesNeeded ?? 0)),
    prefetchesLanded: Math.min(...reports.map((r) => r.kv.prefetchesLanded ?? 0)),
    prefetchBytesNeeded: sum((kv) => kv.prefetchBytesNeeded ?? 0),
    prefetchBytesLanded: sum((kv) => kv.prefetchBytesLanded ?? 0),
  };
}
