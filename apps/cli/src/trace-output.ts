/**
 * --trace FILE (Chrome trace-event JSON) and --report FILE.html (the self-contained page) on run
 * and bench: a TraceRecorder is made only when one of them is asked for, and both files are
 * written from the same recorded events once the runs are done.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type FlagValues, optionalString } from './args.ts';
import { type TraceProcess, toChromeTraceOfRuns } from './chrome-trace.ts';
import { type ReportSummary, renderReportOfRuns } from './html-report.ts';

export interface TraceOutputs {
  tracePath?: string;
  reportPath?: string;
}

export function readTraceOutputs(values: FlagValues): TraceOutputs {
  return { tracePath: optionalString(values, 'trace'), reportPath: optionalString(values, 'report') };
}

export function isTraceWanted(outputs: TraceOutputs): boolean {
  return outputs.tracePath !== undefined || outputs.reportPath !== undefined;
}

/** Writes whichever files were asked for; returns one 'wrote ...' line per file for the log. */
export function writeTraceOutputs(
  outputs: TraceOutputs,
  runs: readonly TraceProcess[],
  summary: ReportSummary,
): string[] {
  const lines: string[] = [];
  const write = (path: string, text: string, what: string) => {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    writeFileSync(path, text);
    lines.push(`wrote ${what} to ${path}`);
  };
  if (outputs.tracePath !== undefined) {
    const numEvents = runs.reduce((sum, run) => sum + run.events.length, 0);
    write(outputs.tracePath, toChromeTraceOfRuns(runs), `the trace (${numEvents} events)`);
  }
  if (outputs.reportPath !== undefined)
    write(outputs.reportPath, renderReportOfRuns(runs, summary), 'the report');
  return lines;
}
