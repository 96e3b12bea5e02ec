/** The end-of-run summary of `seesaw run` (and the default job). */
import { formatDuration } from './progress.ts';
import { throughputRates } from './throughput-report.ts';

export interface RunSummary {
  numOk: number;
  numErrors: number;
  /** Requests already completed in the output file by an earlier run. */
  numSkipped: number;
  /** Over the requests completed in this run. */
  numPromptTokens: number;
  numOutputTokens: number;
  /** Whole job: reading input, loading the model, generating. */
  elapsedMs: number;
  /** Generation only (0 when nothing ran). */
  engineElapsedMs: number;
  outputPath: string;
}

export function formatRunSummary(summary: RunSummary): string {
  const rates = throughputRates({
    numRequests: summary.numOk,
    numPromptTokens: summary.numPromptTokens,
    numOutputTokens: summary.numOutputTokens,
    elapsedMs: summary.engineElapsedMs,
  });
  return [
    `Requests: ${summary.numOk} ok, ${summary.numErrors} errors, ${summary.numSkipped} skipped (already completed)`,
    `Tokens: ${summary.numPromptTokens} prompt, ${summary.numOutputTokens} output`,
    `Elapsed: ${formatDuration(summary.elapsedMs)} total (${(summary.elapsedMs / 1000).toFixed(2)} s), ` +
      `generation ${(summary.engineElapsedMs / 1000).toFixed(2)} s`,
    `Tokens/s: ${rates.outputTokensPerSecond.toFixed(2)} output, ${rates.totalTokensPerSecond.toFixed(2)} total`,
    `Output: ${summary.outputPath}`,
    '',
  ].join('\n');
}
