/**
 * The throughput figures `bench` and the default job print, in vLLM benchmark_throughput's
 * wording so results can be compared line for line.
 */

export interface ThroughputFigures {
  numRequests: number;
  numPromptTokens: number;
  numOutputTokens: number;
  /** Time spent generating (model loading excluded), in milliseconds. */
  elapsedMs: number;
}

export interface ThroughputRates {
  requestsPerSecond: number;
  totalTokensPerSecond: number;
  outputTokensPerSecond: number;
}

export function throughputRates(figures: ThroughputFigures): ThroughputRates {
  const seconds = figures.elapsedMs / 1000;
  const rate = (count: number) => (seconds > 0 ? count / seconds : 0);
  return {
    requestsPerSecond: rate(figures.numRequests),
    totalTokensPerSecond: rate(figures.numPromptTokens + figures.numOutputTokens),
    outputTokensPerSecond: rate(figures.numOutputTokens),
  };
}

/** `Throughput: X requests/s, Y total tokens/s, Z output tokens/s` plus the two token totals. */
export function formatThroughputLines(figures: ThroughputFigures): string {
  const rates = throughputRates(figures);
  return [
    `Throughput: ${rates.requestsPerSecond.toFixed(2)} requests/s, ` +
      `${rates.totalTokensPerSecond.toFixed(2)} total tokens/s, ` +
      `${rates.outputTokensPerSecond.toFixed(2)} output tokens/s`,
    `Total num prompt tokens: ${figures.numPromptTokens}`,
    `Total num output tokens: ${figures.numOutputTokens}`,
    '',
  ].join('\n');
}
