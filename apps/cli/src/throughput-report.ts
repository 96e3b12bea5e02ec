/**
 * The throughput figures `bench` and the default job print, in vLLM benchmark_throughput's
 * wording so results can be compared line for line.
 */
import type { StepTimeStats } from '@seesaw/coordinator';

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

/** Engine counters split by step kind (the subset of EngineStats this report reads). */
export type PhaseCounters = Omit<StepTimeStats, 'busyMs' | 'idleMs'>;

/**
 * Per-phase rates over device time: prefill steps (any prompt chunk) and decode-only steps.
 * These are what single-phase figures of other engines (llama.cpp's pp/tg) compare against.
 */
export interface PhaseRates {
  numPrefillSteps: number;
  prefillSeconds: number;
  prefillTokensPerSecond: number;
  numDecodeSteps: number;
  decodeSeconds: number;
  decodeTokensPerSecond: number;
}

export function phaseRates(counters: PhaseCounters): PhaseRates {
  const rate = (tokens: number, ms: number) => (ms > 0 ? (tokens * 1000) / ms : 0);
  return {
    numPrefillSteps: counters.numPrefillSteps,
    prefillSeconds: counters.prefillStepMs / 1000,
    prefillTokensPerSecond: rate(counters.numPrefillStepTokens, counters.prefillStepMs),
    numDecodeSteps: counters.numDecodeSteps,
    decodeSeconds: counters.decodeStepMs / 1000,
    decodeTokensPerSecond: rate(counters.numDecodeStepTokens, counters.decodeStepMs),
  };
}

export function formatPhaseRates(rates: PhaseRates): string {
  return (
    `Prefill steps: ${rates.numPrefillSteps}, ${rates.prefillSeconds.toFixed(2)} s, ` +
    `${rates.prefillTokensPerSecond.toFixed(2)} tokens/s; ` +
    `decode-only steps: ${rates.numDecodeSteps}, ${rates.decodeSeconds.toFixed(2)} s, ` +
    `${rates.decodeTokensPerSecond.toFixed(2)} tokens/s`
  );
}
