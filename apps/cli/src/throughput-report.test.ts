import { describe, expect, it } from 'vitest';
import { benchJson, formatBenchReport } from './commands/bench.ts';
import { formatRunSummary } from './run-summary.ts';
import { formatThroughputLines, phaseRates, throughputRates } from './throughput-report.ts';

const FIGURES = { numRequests: 10, numPromptTokens: 1000, numOutputTokens: 250, elapsedMs: 2500 };

describe('throughput report', () => {
  it('computes rates over the generation time', () => {
    expect(throughputRates(FIGURES)).toEqual({
      requestsPerSecond: 4,
      totalTokensPerSecond: 500,
      outputTokensPerSecond: 100,
    });
    expect(throughputRates({ ...FIGURES, elapsedMs: 0 }).requestsPerSecond).toBe(0);
  });

  it('prints the vLLM benchmark_throughput lines exactly', () => {
    expect(formatThroughputLines(FIGURES)).toBe(
      'Throughput: 4.00 requests/s, 500.00 total tokens/s, 100.00 output tokens/s\n' +
        'Total num prompt tokens: 1000\n' +
        'Total num output tokens: 250\n',
    );
  });

  it('bench adds elapsed, memory, weights and KV cache, and the same figures as JSON', () => {
    const result = {
      ...FIGURES,
      numRejected: 1,
      peakRssBytes: 3 * 1024 ** 3,
      weightBytes: 1024 ** 2,
      kvCacheBytes: 512,
      phases: phaseRates({
        numPrefillSteps: 4,
        prefillStepMs: 2000,
        numPrefillStepTokens: 1010,
        numDecodeSteps: 24,
        decodeStepMs: 400,
        numDecodeStepTokens: 240,
      }),
      preemptions: { numPreemptions: 3, numSwapOuts: 2, numRecomputedTokens: 17 },
    };
    const report = formatBenchReport(result);
    expect(report.startsWith(formatThroughputLines(FIGURES))).toBe(true);
    expect(report).toContain('Elapsed: 2.50 s for 10 requests (1 rejected by the engine, not counted)\n');
    expect(report).toContain('Peak resident memory: 3.00 GiB\n');
    expect(report).toContain('Model weights: 1.00 MiB\n');
    expect(report).toContain('KV cache: 512 B\n');
    expect(report).toContain('Preemptions: 3 (2 swapped to host memory, 17 tokens recomputed)\n');
    expect(report).toContain(
      'Prefill steps: 4, 2.00 s, 505.00 tokens/s; decode-only steps: 24, 0.40 s, 600.00 tokens/s\n',
    );
    expect(benchJson(result)).toEqual({
      elapsed_time: 2.5,
      num_requests: 10,
      num_rejected: 1,
      total_num_prompt_tokens: 1000,
      total_num_output_tokens: 250,
      total_num_tokens: 1250,
      requests_per_second: 4,
      tokens_per_second: 500,
      output_tokens_per_second: 100,
      peak_rss_bytes: 3 * 1024 ** 3,
      weight_bytes: 1024 ** 2,
      kv_cache_bytes: 512,
      prefill_steps: 4,
      prefill_step_seconds: 2,
      prefill_tokens_per_second: 505,
      decode_steps: 24,
      decode_step_seconds: 0.4,
      decode_tokens_per_second: 600,
    });
  });

  it('run summary names ok / errors / skipped, tokens, elapsed, tokens/s and the output file', () => {
    const text = formatRunSummary({
      numOk: 10,
      numErrors: 2,
      numSkipped: 3,
      numPromptTokens: 1000,
      numOutputTokens: 250,
      elapsedMs: 3000,
      engineElapsedMs: 2500,
      outputPath: 'out.jsonl',
    });
    expect(text).toBe(
      [
        'Requests: 10 ok, 2 errors, 3 skipped (already completed)',
        'Tokens: 1000 prompt, 250 output',
        'Elapsed: 0:03 total (3.00 s), generation 2.50 s',
        'Tokens/s: 100.00 output, 500.00 total',
        'Output: out.jsonl',
        '',
      ].join('\n'),
    );
  });
});
