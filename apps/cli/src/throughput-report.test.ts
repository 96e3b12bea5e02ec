import { describe, expect, it } from 'vitest';
import { benchJson, formatBenchReport } from './commands/bench.ts';
import { formatRunSummary, runSummaryGrid } from './run-summary.ts';
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
      kvMoved: { tokens: 0, bytes: 0 },
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
      kv_moved_tokens: 0,
      kv_moved_bytes: 0,
      kv_bytes_per_moved_token: null,
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

  const SEESAW_FIGURES = {
    numSwitches: 3,
    prefillMs: 1500,
    decodeMs: 2250,
    reshardMs: 125,
    kvWaitMs: 50,
    // 1 - wait / summed prefetch time would say 75%; 12 of 16 sequences landed first (75%), 5 of
    // 8 MiB (62.5%): the figures come from the counts.
    prefetchMs: 400,
    prefetchWaitMs: 300,
    prefetchesNeeded: 16,
    prefetchesLanded: 12,
    prefetchBytesNeeded: 8 * 1024 ** 2,
    prefetchBytesLanded: 5 * 1024 ** 2,
    peakDeviceMemoryBytes: 3 * 1024 ** 2,
    hostKvBytes: 64 * 1024 ** 2,
  };

  it('bench adds the Seesaw line and JSON fields for a Seesaw run only', () => {
    const result = {
      ...FIGURES,
      numRejected: 0,
      peakRssBytes: 1024 ** 3,
      weightBytes: 1024 ** 2,
      kvCacheBytes: 512,
      phases: phaseRates({
        numPrefillSteps: 1,
        prefillStepMs: 1,
        numPrefillStepTokens: 1,
        numDecodeSteps: 1,
        decodeStepMs: 1,
        numDecodeStepTokens: 1,
      }),
      preemptions: { numPreemptions: 0, numSwapOuts: 0, numRecomputedTokens: 0 },
      kvMoved: { tokens: 0, bytes: 0 },
      figures: SEESAW_FIGURES,
    };
    expect(formatBenchReport(result)).not.toContain('Seesaw:');
    expect(formatBenchReport(result)).not.toContain('KV moved');
    expect(benchJson(result).num_switches).toBeUndefined();
    const seesaw = { ...result, isSeesaw: true };
    expect(formatBenchReport(seesaw)).toContain(
      'Seesaw: 3 phase switches; 1.50 s in prefill, 2.25 s in decode, 0.13 s re-sharding, 0.05 s waiting for KV; ' +
        'swap-in hidden 75.0% of 16 sequences, 62.5% of bytes; host KV 64.00 MiB\n',
    );
    expect(benchJson(seesaw)).toMatchObject({
      num_switches: 3,
      reshard_seconds: 0.125,
      swap_in_hidden_fraction: 0.75,
      swap_in_hidden_byte_fraction: 0.625,
      host_kv_memory_bytes: 64 * 1024 ** 2,
    });
  });

  it('bench prints the KV bytes moved per swapped token and the KV dtype', () => {
    const result = {
      ...FIGURES,
      numRejected: 0,
      peakRssBytes: 1024 ** 3,
      weightBytes: 1024 ** 2,
      kvCacheBytes: 512,
      phases: phaseRates({
        numPrefillSteps: 1,
        prefillStepMs: 1,
        numPrefillStepTokens: 1,
        numDecodeSteps: 1,
        decodeStepMs: 1,
        numDecodeStepTokens: 1,
      }),
      preemptions: { numPreemptions: 2, numSwapOuts: 2, numRecomputedTokens: 0 },
      kvDtype: 'bf16',
      kvMoved: { tokens: 1000, bytes: 2 * 1024 ** 2 },
    };
    const report = formatBenchReport(result);
    expect(report).toContain('KV cache: 512 B (bf16)\n');
    expect(report).toContain(
      'KV moved to/from host: 1000 tokens, 2.00 MiB, 2097 bytes per swapped token (write-backs, prefetches and swaps)\n',
    );
    expect(benchJson(result)).toMatchObject({
      kv_moved_tokens: 1000,
      kv_moved_bytes: 2 * 1024 ** 2,
      kv_bytes_per_moved_token: 2097.152,
    });
  });

  it('run summary adds the phase line after a switch, and the report grid every figure', () => {
    const summary = {
      numOk: 10,
      numErrors: 0,
      numSkipped: 0,
      numPromptTokens: 1000,
      numOutputTokens: 250,
      elapsedMs: 3000,
      engineElapsedMs: 2500,
      outputPath: 'out.jsonl',
      layout: 'prefill P2, decode T2',
      figures: { ...SEESAW_FIGURES, numSwitches: 1, prefetchesNeeded: 0, prefetchesLanded: 0 },
    };
    expect(formatRunSummary(summary)).toContain(
      'Phases: 1 switch, 1.50 s prefill, 2.25 s decode, 0.13 s re-sharding, 0.05 s waiting for KV\nOutput: out.jsonl\n',
    );
    const grid = runSummaryGrid(summary);
    expect(grid[0]).toEqual(['', 'prefill P2, decode T2']);
    const value = (label: string) => grid.find((line) => line[0] === label)?.[1];
    expect(value('Total tokens/s')).toBe('500.00');
    expect(value('Phase switches')).toBe('1');
    expect(value('Swap-in hidden')).toBe('-');
    expect(value('Host KV memory')).toBe('64.00 MiB');
    expect(formatRunSummary({ ...summary, figures: { ...summary.figures, numSwitches: 0 } })).not.toContain(
      'Phases',
    );
  });
});
