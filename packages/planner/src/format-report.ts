import type { SearchResult } from './search.ts';
import type { SimulationReport } from './sim-types.ts';

function pad(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
}

/** A ranked table of simulation reports (the top `limit`). */
export function formatRanking(title: string, reports: readonly SimulationReport[], limit: number): string {
  const header = ['#', 'config', 'tok/s', 'out tok/s', 'req/s', 'time s', 'switches', 'reshard s', 'preempt'];
  const rows = reports
    .slice(0, limit)
    .map((r, i) => [
      String(i + 1),
      r.label,
      r.totalTokensPerSecond.toFixed(0),
      r.outputTokensPerSecond.toFixed(0),
      r.requestsPerSecond.toFixed(3),
      r.elapsedSeconds.toFixed(1),
      String(r.numSwitches),
      r.reshardSeconds.toFixed(1),
      String(r.numPreemptions),
    ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const lines = [
    `${title} (${reports.length} ranked)`,
    pad(header, widths),
    ...rows.map((row) => pad(row, widths)),
  ];
  return `${lines.join('\n')}\n`;
}

/** The last line of `seesaw plan`. */
export function formatGainLine(result: SearchResult): string {
  if (result.bestStatic === null || result.bestPair === null) {
    return `gain: n/a (${result.bestPair === null ? 'no Seesaw pair' : 'no static configuration'} fits)`;
  }
  return `gain: ${result.gain.toFixed(2)}x (best pair ${result.bestPair.label} vs best static ${result.bestStatic.label})`;
}

export function formatSearchResult(result: SearchResult, limit: number): string {
  const excluded = result.excluded.map((entry) => `  ${entry.label}: ${entry.reason}\n`).join('');
  return (
    formatRanking('static configurations', result.statics, limit) +
    '\n' +
    formatRanking('Seesaw pairs (prefill->decode)', result.pairs, limit) +
    (excluded === '' ? '' : `\nexcluded:\n${excluded}`) +
    `\n${formatGainLine(result)}\n`
  );
}

/** What `seesaw simulate` prints for one run: bench's figures, modelled. */
export function formatSimulationReport(report: SimulationReport): string {
  const lines = [
    `simulated ${report.label}: ${report.numFinished}/${report.numRequests} requests` +
      (report.numRejected > 0 ? ` (${report.numRejected} rejected: too long for the KV cache)` : '') +
      ` in ${report.elapsedSeconds.toFixed(2)} s`,
    `throughput: ${report.requestsPerSecond.toFixed(3)} requests/s, ${report.totalTokensPerSecond.toFixed(1)} total tokens/s, ` +
      `${report.outputTokensPerSecond.toFixed(1)} output tokens/s`,
    `tokens: ${report.promptTokens} prompt, ${report.outputTokens} output; steps ${report.numSteps}, preemptions ${report.numPreemptions}`,
    `KV: ${report.numKvBlocks.join(' / ')} device blocks per replica` +
      (report.numHostSlots > 0 ? `, ${report.numHostSlots} host slots` : ''),
  ];
  if (report.numSwitches > 0 || report.label.includes('->')) {
    lines.push(
      `phases: ${report.numSwitches} switches, prefill ${report.prefillSeconds.toFixed(1)} s, decode ` +
        `${report.decodeSeconds.toFixed(1)} s, re-shard ${report.reshardSeconds.toFixed(1)} s, ` +
        `waiting for KV ${report.kvWaitSeconds.toFixed(2)} s (summed over replicas)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
