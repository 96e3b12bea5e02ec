/**
 * Where each Seesaw run of a `seesaw bench --trace F.json` trace spent its time: per replica and
 * phase, wall time, steps (median, first two), and per device its compute and idle time inside
 * the phase (fill, bubbles, drain; see seesaw-phase-timeline.ts), plus the switches between.
 *   pnpm bench:seesaw-trace F.json
 */
import { readFileSync } from 'node:fs';
import { type PhaseTimeline, seesawPhaseTimeline } from '../src/seesaw-phase-timeline.ts';
import type { TraceCategory, TraceEvent } from '../src/trace-recorder.ts';

interface ChromeEvent {
  name: string;
  cat?: string;
  ph: string;
  ts?: number;
  dur?: number;
  pid: number;
  tid?: number;
  args?: Record<string, unknown>;
}

/** The trace's complete spans per process name, as TraceEvents on their thread-name tracks. */
function readTrace(path: string): Map<string, TraceEvent[]> {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: ChromeEvent[] } | ChromeEvent[];
  const events = Array.isArray(parsed) ? parsed : parsed.traceEvents;
  const processNames = new Map<number, string>();
  const threadNames = new Map<string, string>();
  for (const event of events) {
    if (event.ph !== 'M') continue;
    const name = String(event.args?.name ?? '');
    if (event.name === 'process_name') processNames.set(event.pid, name);
    if (event.name === 'thread_name') threadNames.set(`${event.pid}/${event.tid}`, name);
  }
  const byProcess = new Map<string, TraceEvent[]>();
  for (const event of events) {
    if (event.ph !== 'X' || event.ts === undefined || event.dur === undefined) continue;
    const processName = processNames.get(event.pid) ?? `pid ${event.pid}`;
    if (!byProcess.has(processName)) byProcess.set(processName, []);
    byProcess.get(processName)!.push({
      track: threadNames.get(`${event.pid}/${event.tid}`) ?? `tid ${event.tid}`,
      name: event.name,
      category: (event.cat ?? 'kv') as TraceCategory,
      startMs: event.ts / 1000,
      durationMs: event.dur / 1000,
    });
  }
  return byProcess;
}

const ms = (value: number) => `${value.toFixed(0)} ms`;

function describePhase(phase: PhaseTimeline): string {
  const head =
    `  ${phase.phase}: ${(phase.durationMs / 1000).toFixed(2)} s, ${phase.numSteps} steps ` +
    `(median ${ms(phase.medianStepMs)}, first ${phase.firstStepsMs.map(ms).join(', ')})`;
  const devices = phase.devices.map(
    (d) =>
      `    device ${d.device}: compute ${ms(d.computeMs)} (${((100 * d.computeMs) / phase.durationMs).toFixed(0)}%), ` +
      `fill ${ms(d.fillMs)}, bubbles ${ms(d.bubbleMs)}, drain ${ms(d.drainMs)}`,
  );
  return [head, ...devices].join('\n');
}

const path = process.argv[2];
if (!path) {
  console.error('usage: pnpm bench:seesaw-trace TRACE.json (from seesaw bench --trace)');
  process.exit(1);
}
for (const [processName, events] of readTrace(path)) {
  const replicas = [...new Set(events.map((e) => /^replica (\d+)$/.exec(e.track)?.[1]).filter((r) => r))];
  for (const replica of replicas) {
    const phases = seesawPhaseTimeline(events, Number(replica));
    console.log(`${processName} replica ${replica}:`);
    phases.forEach((phase, i) => {
      console.log(describePhase(phase));
      const next = phases[i + 1];
      if (next) console.log(`  switch: ${ms(next.startMs - phase.startMs - phase.durationMs)}`);
    });
  }
}
