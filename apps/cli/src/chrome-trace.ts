/**
 * Chrome trace-event JSON (the format chrome://tracing and Perfetto open) from TraceRecorder
 * events: every span is a complete event (ph 'X') with ts/dur in microseconds; each run is a
 * process (pid, named by a process_name metadata event) and each track a thread (tid, named by
 * thread_name and ordered by thread_sort_index in order of first appearance).
 */
import type { TraceEvent } from '@seesaw/coordinator';

/** One run's events, shown as one process of the trace. */
export interface TraceProcess {
  name: string;
  events: readonly TraceEvent[];
}

interface CompleteEvent {
  name: string;
  cat: string;
  ph: 'X';
  /** Microseconds from the process's first event. */
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args: Record<string, number | string>;
}

interface MetadataEvent {
  name: 'process_name' | 'thread_name' | 'thread_sort_index' | 'process_sort_index';
  ph: 'M';
  pid: number;
  tid: number;
  args: { name: string } | { sort_index: number };
}

export interface ChromeTrace {
  traceEvents: Array<CompleteEvent | MetadataEvent>;
  displayTimeUnit: 'ms';
}

/** Microseconds, rounded to 0.001 us so the file stays short and exact enough. */
const toMicros = (ms: number) => Math.round(ms * 1_000_000) / 1000;

/**
 * Runs as processes 1..n. Times restart at 0 in each process so runs of a comparison line up;
 * negative or non-finite durations (a clock that went wrong) become 0 rather than breaking the viewer.
 */
export function chromeTraceOf(processes: readonly TraceProcess[]): ChromeTrace {
  const traceEvents: Array<CompleteEvent | MetadataEvent> = [];
  processes.forEach((process, processIndex) => {
    const pid = processIndex + 1;
    traceEvents.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: process.name } });
    traceEvents.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    const originMs = process.events.reduce(
      (min, event) => (Number.isFinite(event.startMs) ? Math.min(min, event.startMs) : min),
      Number.POSITIVE_INFINITY,
    );
    const tidOf = new Map<string, number>();
    for (const event of process.events) {
      let tid = tidOf.get(event.track);
      if (tid === undefined) {
        tid = tidOf.size + 1;
        tidOf.set(event.track, tid);
        traceEvents.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: event.track } });
        traceEvents.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } });
      }
      const startMs = Number.isFinite(event.startMs) ? event.startMs - originMs : 0;
      const durationMs = Number.isFinite(event.durationMs) ? Math.max(0, event.durationMs) : 0;
      traceEvents.push({
        name: event.name,
        cat: event.category,
        ph: 'X',
        ts: toMicros(startMs),
        dur: toMicros(durationMs),
        pid,
        tid,
        args: { ...(event.args ?? {}) },
      });
    }
  });
  return { traceEvents, displayTimeUnit: 'ms' };
}

/** One run's trace as JSON text. */
export function toChromeTrace(events: readonly TraceEvent[], processName = 'seesaw'): string {
  return JSON.stringify(chromeTraceOf([{ name: processName, events }]));
}

/** Several runs (bench --compare) as one trace, one process each. */
export function toChromeTraceOfRuns(processes: readonly TraceProcess[]): string {
  return JSON.stringify(chromeTraceOf(processes));
}
