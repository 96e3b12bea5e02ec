/**
 * Where a Seesaw replica's time goes, read back from its trace (`bench --trace`): each phase's
 * wall time, its steps, and per device how long it computed and how long it sat idle inside a
 * pipelined phase: before its first compute (the pipeline filling), between computes (bubbles:
 * a stage waiting for input or for the coordinator) and after its last (draining). Device
 * compute spans come from the `replica N device i kv` tracks, which devices report for the steps
 * that move KV (with a host KV tier: every step of a prefill phase, which writes KV back, but only
 * a decode phase's first steps); a phase lists the devices that reported every step of it.
 */
import type { TraceEvent } from './trace-recorder.ts';

export interface DeviceIdle {
  device: number;
  computeMs: number;
  /** Phase start -> first compute start. */
  fillMs: number;
  /** Summed gaps between consecutive computes. */
  bubbleMs: number;
  /** Last compute end -> phase end. */
  drainMs: number;
}

export interface PhaseTimeline {
  phase: 'prefill' | 'decode';
  startMs: number;
  durationMs: number;
  numSteps: number;
  medianStepMs: number;
  /** The phase's first steps' durations (a decode phase's first steps wait for KV). */
  firstStepsMs: number[];
  devices: DeviceIdle[];
}

/** The phases of replica `replica`'s steps in time order, split wherever the phase changes. */
export function seesawPhaseTimeline(events: readonly TraceEvent[], replica: number): PhaseTimeline[] {
  const track = `replica ${replica}`;
  const steps = events
    .filter((event) => event.track === track && (event.category === 'prefill' || event.category === 'decode'))
    .sort((a, b) => a.startMs - b.startMs);
  const runs: TraceEvent[][] = [];
  for (const step of steps) {
    const run = runs.at(-1);
    if (run && run[0].category === step.category) run.push(step);
    else runs.push([step]);
  }
  const computesByDevice = new Map<number, TraceEvent[]>();
  const devicePattern = new RegExp(`^${track} device (\\d+) kv$`);
  for (const event of events) {
    const match = devicePattern.exec(event.track);
    if (!match || event.name !== 'compute') continue;
    const device = Number(match[1]);
    if (!computesByDevice.has(device)) computesByDevice.set(device, []);
    computesByDevice.get(device)!.push(event);
  }
  return runs.map((run) => phaseOf(run, computesByDevice));
}

function phaseOf(run: TraceEvent[], computesByDevice: Map<number, TraceEvent[]>): PhaseTimeline {
  const startMs = run[0].startMs;
  const endMs = Math.max(...run.map((step) => step.startMs + step.durationMs));
  const durations = run.map((step) => step.durationMs).sort((a, b) => a - b);
  const devices: DeviceIdle[] = [];
  for (const [device, computes] of [...computesByDevice].sort(([a], [b]) => a - b)) {
    const inPhase = computes
      .filter((span) => span.startMs >= startMs && span.startMs < endMs)
      .sort((a, b) => a.startMs - b.startMs);
    // Devices report spans only for steps that moved KV: idle time is known only with all of them.
    if (inPhase.length !== run.length) continue;
    let bubbleMs = 0;
    let busyUntil = inPhase[0].startMs;
    let computeMs = 0;
    for (const span of inPhase) {
      bubbleMs += Math.max(0, span.startMs - busyUntil);
      computeMs += span.durationMs;
      busyUntil = Math.max(busyUntil, span.startMs + span.durationMs);
    }
    devices.push({
      device,
      computeMs,
      fillMs: inPhase[0].startMs - startMs,
      bubbleMs,
      drainMs: Math.max(0, endMs - busyUntil),
    });
  }
  return {
    phase: run[0].category as 'prefill' | 'decode',
    startMs,
    durationMs: endMs - startMs,
    numSteps: run.length,
    medianStepMs: durations[Math.floor(durations.length / 2)],
    firstStepsMs: run.slice(0, 2).map((step) => step.durationMs),
    devices,
  };
}
