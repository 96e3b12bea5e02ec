/** The end-of-run summary of `seesaw run` (and the default job). */
import { formatByteSize } from './byte-size.ts';
import { formatSwapInHidden, type SessionFigures } from './engine-session.ts';
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
  /** Where it ran ('P2 -> T2 on 2 device workers ...'), once the engine ran. */
  layout?: string;
  /** Element type of the KV cache (devices and host tier), once the engine ran, where known (not for a remote job). */
  kvDtype?: string;
  /** Phase, re-shard and KV figures, once the engine ran; their line is printed when it switched phases. */
  figures?: SessionFigures;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

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
    ...(summary.figures && summary.figures.numSwitches > 0 ? [formatPhaseLine(summary.figures)] : []),
    ...(summary.kvDtype ? [`KV cache: ${summary.kvDtype}`] : []),
    `Output: ${summary.outputPath}`,
    '',
  ].join('\n');
}

function formatPhaseLine(figures: SessionFigures): string {
  const hidden = formatSwapInHidden(figures);
  return (
    `Phases: ${figures.numSwitches} switch${figures.numSwitches === 1 ? '' : 'es'}, ` +
    `${seconds(figures.prefillMs)} prefill, ${seconds(figures.decodeMs)} decode, ` +
    `${seconds(figures.reshardMs)} re-sharding, ${seconds(figures.kvWaitMs)} waiting for KV` +
    (hidden === '-' ? '' : `, swap-in hidden ${hidden}`)
  );
}

/** The summary as label/value lines for the HTML report (header line first). */
export function runSummaryGrid(summary: RunSummary): string[][] {
  const rates = throughputRates({
    numRequests: summary.numOk,
    numPromptTokens: summary.numPromptTokens,
    numOutputTokens: summary.numOutputTokens,
    elapsedMs: summary.engineElapsedMs,
  });
  const grid = [
    ['', summary.layout ?? 'run'],
    ['Requests ok / errors / skipped', `${summary.numOk} / ${summary.numErrors} / ${summary.numSkipped}`],
    ['Prompt tokens', String(summary.numPromptTokens)],
    ['Output tokens', String(summary.numOutputTokens)],
    ['Generation time', seconds(summary.engineElapsedMs)],
    ['Requests/s', rates.requestsPerSecond.toFixed(2)],
    ['Total tokens/s', rates.totalTokensPerSecond.toFixed(2)],
    ['Output tokens/s', rates.outputTokensPerSecond.toFixed(2)],
  ];
  if (summary.kvDtype) grid.push(['KV cache dtype', summary.kvDtype]);
  const figures = summary.figures;
  if (figures) {
    grid.push(
      ['Phase switches', String(figures.numSwitches)],
      ['Time in prefill', seconds(figures.prefillMs)],
      ['Time in decode', seconds(figures.decodeMs)],
      ['Time re-sharding', seconds(figures.reshardMs)],
      ['Time waiting for KV', seconds(figures.kvWaitMs)],
      ['Swap-in hidden', formatSwapInHidden(figures)],
      ['Peak device memory', formatByteSize(figures.peakDeviceMemoryBytes)],
      ['Host KV memory', figures.hostKvBytes > 0 ? formatByteSize(figures.hostKvBytes) : '-'],
    );
  }
  return grid;
}
