/**
 * `seesaw bench`: offline throughput like vLLM's benchmark_throughput. All requests are queued
 * at once and the clock runs from queueing to the last finished request (model load excluded).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { TraceRecorder } from '@seesaw/coordinator';
import { formatParallelConfig, loadModelConfig, SeesawTokenizer } from '@seesaw/model';
import {
  type FlagValues,
  optionalChoice,
  optionalInteger,
  optionalString,
  parseFlags,
  UsageError,
} from '../args.ts';
import { isAutoPair, resolveAutoPair } from '../auto-pair.ts';
import {
  type BenchRequest,
  jsonlDataset,
  parseLengthsCsv,
  randomDataset,
  sampleLengthsDataset,
} from '../bench-dataset.ts';
import { formatByteSize } from '../byte-size.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { compareGrid, compareRowOf } from '../compare-table.ts';
import {
  drainEngine,
  type EngineSettings,
  formatSwapInHidden,
  openEngineSession,
  type SessionFigures,
  swapInHiddenByteFraction,
  swapInHiddenFraction,
  tryAddRequest,
} from '../engine-session.ts';
import { CHECKPOINT_DTYPES, ensureCachedModel } from '../model-cache.ts';
import {
  formatPhaseRates,
  formatThroughputLines,
  type PhaseRates,
  phaseRates,
  type ThroughputFigures,
  throughputRates,
} from '../throughput-report.ts';
import { isTraceWanted, readTraceOutputs, type TraceOutputs, writeTraceOutputs } from '../trace-output.ts';
import { shapeNames } from './gen-model.ts';
import { readEngineSettings } from './run.ts';

export const BENCH_FLAGS = commandFlagSpec('bench');

export interface BenchResult extends ThroughputFigures {
  numRejected: number;
  peakRssBytes: number;
  weightBytes: number;
  kvCacheBytes: number;
  phases: PhaseRates;
  preemptions: { numPreemptions: number; numSwapOuts: number; numRecomputedTokens: number };
  /** KV cache element type, where the session knows it (not a remote job). */
  kvDtype?: string;
  /** Token positions whose KV moved to or from the host tier (swaps, write-backs, prefetches) and their host bytes. */
  kvMoved: { tokens: number; bytes: number };
  /** Phase, re-shard and KV-transfer figures; printed for Seesaw runs. */
  figures?: SessionFigures;
  /** Whether the run switched between a prefill and a decode layout (--prefill/--decode). */
  isSeesaw?: boolean;
}

/** Bytes moved per token: whole host slots, so it halves with a 16-bit KV dtype. */
function kvBytesPerMovedToken(kvMoved: BenchResult['kvMoved']): number | null {
  return kvMoved.tokens > 0 ? kvMoved.bytes / kvMoved.tokens : null;
}

function formatKvMovedLine(kvMoved: BenchResult['kvMoved']): string {
  return (
    `KV moved to/from host: ${kvMoved.tokens} tokens, ${formatByteSize(kvMoved.bytes)}, ` +
    `${Math.round(kvBytesPerMovedToken(kvMoved)!)} bytes per swapped token (write-backs, prefetches and swaps)`
  );
}

function formatSeesawLine(figures: SessionFigures): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return (
    `Seesaw: ${figures.numSwitches} phase switch${figures.numSwitches === 1 ? '' : 'es'}; ` +
    `${s(figures.prefillMs)} in prefill, ` +
    `${s(figures.decodeMs)} in decode, ${s(figures.reshardMs)} re-sharding, ${s(figures.kvWaitMs)} waiting for KV; ` +
    `swap-in hidden ${formatSwapInHidden(figures)}; ` +
    `host KV ${formatByteSize(figures.hostKvBytes)}`
  );
}

async function resolveModelDir(values: FlagValues, seed: number): Promise<string> {
  const modelDir = optionalString(values, 'model');
  const shape = optionalChoice(values, 'shape', shapeNames());
  const dtype = optionalChoice(values, 'dtype', CHECKPOINT_DTYPES);
  if (modelDir !== undefined) {
    if (shape !== undefined || dtype !== undefined) {
      throw new UsageError('give either --model DIR or --shape NAME [--dtype D], not both');
    }
    return modelDir;
  }
  if (shape === undefined)
    throw new UsageError('missing --model DIR (or --shape NAME to use a generated model)');
  return ensureCachedModel({ shape, dtype: dtype ?? 'bf16', seed }, (line) =>
    process.stderr.write(`${line}\n`),
  );
}

function loadDataset(values: FlagValues, modelDir: string, numPrompts: number, seed: number): BenchRequest[] {
  const dataset = optionalString(values, 'dataset') ?? 'random';
  const inputLen = optionalInteger(values, 'input-len', { min: 1 });
  const outputLen = optionalInteger(values, 'output-len', { min: 1 });
  const config = loadModelConfig(modelDir);
  if (dataset === 'random') {
    if (inputLen === undefined || outputLen === undefined) {
      throw new UsageError('--dataset random needs --input-len and --output-len');
    }
    return randomDataset({ numPrompts, inputLen, outputLen, vocabSize: config.vocabSize, seed });
  }
  if (inputLen !== undefined) throw new UsageError('--input-len applies only to --dataset random');
  if (!existsSync(dataset)) throw new UsageError(`--dataset: no such file '${dataset}' (or use 'random')`);
  const content = readFileSync(dataset, 'utf8');
  const extension = extname(dataset).toLowerCase();
  if (extension === '.csv') {
    const pairs = parseLengthsCsv(content, dataset);
    const { requests, numFiltered } = sampleLengthsDataset(pairs, {
      numPrompts,
      vocabSize: config.vocabSize,
      maxModelLen: config.maxPositionEmbeddings,
      seed,
      outputLen,
    });
    if (numFiltered > 0) {
      process.stderr.write(
        `${dataset}: ${numFiltered} rows do not fit the model and were left out of sampling\n`,
      );
    }
    return requests;
  }
  if (extension === '.jsonl' || extension === '.json') {
    return jsonlDataset(
      content,
      dataset,
      { numPrompts, outputLen },
      {
        vocabSize: config.vocabSize,
        maxModelLen: config.maxPositionEmbeddings,
        tokenizer: SeesawTokenizer.load(modelDir),
      },
    );
  }
  throw new UsageError(
    `--dataset must be 'random', a .csv length trace or a .jsonl prompts file, got '${dataset}'`,
  );
}

export function formatBenchReport(result: BenchResult): string {
  return [
    formatThroughputLines(result).trimEnd(),
    `Elapsed: ${(result.elapsedMs / 1000).toFixed(2)} s for ${result.numRequests} requests` +
      (result.numRejected > 0 ? ` (${result.numRejected} rejected by the engine, not counted)` : ''),
    `Peak resident memory: ${formatByteSize(result.peakRssBytes)}`,
    `Model weights: ${formatByteSize(result.weightBytes)}`,
    `KV cache: ${formatByteSize(result.kvCacheBytes)}${result.kvDtype ? ` (${result.kvDtype})` : ''}`,
    formatPhaseRates(result.phases),
    `Preemptions: ${result.preemptions.numPreemptions} (${result.preemptions.numSwapOuts} swapped to host memory, ` +
      `${result.preemptions.numRecomputedTokens} tokens recomputed)`,
    ...(result.kvMoved.tokens > 0 ? [formatKvMovedLine(result.kvMoved)] : []),
    ...(result.isSeesaw && result.figures ? [formatSeesawLine(result.figures)] : []),
    '',
  ].join('\n');
}

export function benchJson(result: BenchResult): Record<string, number | null> {
  const rates = throughputRates(result);
  const json: Record<string, number | null> = {
    elapsed_time: result.elapsedMs / 1000,
    num_requests: result.numRequests,
    num_rejected: result.numRejected,
    total_num_prompt_tokens: result.numPromptTokens,
    total_num_output_tokens: result.numOutputTokens,
    total_num_tokens: result.numPromptTokens + result.numOutputTokens,
    requests_per_second: rates.requestsPerSecond,
    tokens_per_second: rates.totalTokensPerSecond,
    output_tokens_per_second: rates.outputTokensPerSecond,
    peak_rss_bytes: result.peakRssBytes,
    weight_bytes: result.weightBytes,
    kv_cache_bytes: result.kvCacheBytes,
    kv_moved_tokens: result.kvMoved.tokens,
    kv_moved_bytes: result.kvMoved.bytes,
    kv_bytes_per_moved_token: kvBytesPerMovedToken(result.kvMoved),
    prefill_steps: result.phases.numPrefillSteps,
    prefill_step_seconds: result.phases.prefillSeconds,
    prefill_tokens_per_second: result.phases.prefillTokensPerSecond,
    decode_steps: result.phases.numDecodeSteps,
    decode_step_seconds: result.phases.decodeSeconds,
    decode_tokens_per_second: result.phases.decodeTokensPerSecond,
  };
  if (result.isSeesaw && result.figures) {
    const { figures } = result;
    Object.assign(json, {
      num_switches: figures.numSwitches,
      prefill_seconds: figures.prefillMs / 1000,
      decode_seconds: figures.decodeMs / 1000,
      reshard_seconds: figures.reshardMs / 1000,
      kv_wait_seconds: figures.kvWaitMs / 1000,
      swap_in_hidden_fraction: swapInHiddenFraction(figures),
      swap_in_hidden_byte_fraction: swapInHiddenByteFraction(figures),
      peak_device_memory_bytes: figures.peakDeviceMemoryBytes,
      host_kv_memory_bytes: figures.hostKvBytes,
    });
  }
  return json;
}

/** How a run is named in tables and traces: 'seesaw:P2-T2', 'static:T2', or 'in-process'. */
export function runLabel(settings: EngineSettings): string {
  if (settings.seesaw) {
    return `seesaw:${formatParallelConfig(settings.seesaw.prefill)}-${formatParallelConfig(settings.seesaw.decode)}`;
  }
  if (settings.cluster) {
    const backend = settings.backend === 'webgpu' ? 'webgpu:' : '';
    return `static:${backend}${formatParallelConfig(settings.cluster.parallel)}`;
  }
  return 'in-process';
}

/**
 * Queues every request at once and drains the engine: the clock runs from queueing to the last
 * finished request (model load excluded). `log` gets where it runs.
 */
export async function runBench(
  modelDir: string,
  requests: readonly BenchRequest[],
  settings: EngineSettings,
  log: (line: string) => void,
): Promise<BenchResult> {
  const session = await openEngineSession(modelDir, settings);
  log(`bench: running on ${session.layout}`);
  try {
    const startMs = performance.now();
    let numRejected = 0;
    let numPromptTokens = 0;
    requests.forEach((request, index) => {
      const rejection = tryAddRequest(session.engine, { requestId: `bench-${index}`, ...request });
      if (rejection === null) numPromptTokens += request.promptTokenIds.length;
      else numRejected++;
    });
    let numOutputTokens = 0;
    await drainEngine(session.engine, (output) => {
      numOutputTokens += output.outputTokenIds.length;
    });
    const elapsedMs = performance.now() - startMs;
    const stats = session.engine.stats;
    return {
      numRequests: requests.length - numRejected,
      numRejected,
      numPromptTokens,
      numOutputTokens,
      elapsedMs,
      // maxRSS is in kilobytes.
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      weightBytes: session.device.weightBytes,
      kvCacheBytes: session.device.kvCacheBytes,
      phases: phaseRates(stats),
      preemptions: {
        numPreemptions: stats.numPreemptions,
        numSwapOuts: stats.numSwapOuts,
        numRecomputedTokens: stats.numRecomputedTokens,
      },
      ...(session.device.kvDtype ? { kvDtype: session.device.kvDtype } : {}),
      kvMoved: { tokens: stats.kvMovedTokens, bytes: stats.kvMovedBytes },
      figures: session.figures(),
      isSeesaw: settings.seesaw !== undefined,
    };
  } finally {
    await session.close();
  }
}

export async function benchCommand(argv: string[]): Promise<number> {
  const values = parseFlags('bench', argv, BENCH_FLAGS);
  const seed = optionalInteger(values, 'seed', { min: 0, max: 2 ** 32 - 1 }) ?? 0;
  const numPrompts = optionalInteger(values, 'num-prompts', { min: 1 });
  if (numPrompts === undefined) throw new UsageError('missing required flag --num-prompts');
  const jsonPath = optionalString(values, 'json');
  const traceOutputs = readTraceOutputs(values);
  const compareText = optionalString(values, 'compare');
  if (compareText === undefined && values.rounds !== undefined)
    throw new UsageError('--rounds repeats the runs of a --compare; without --compare there is one run');
  if (compareText !== undefined) {
    const { readCompareRuns, runComparison } = await import('./bench-compare.ts');
    const runs = readCompareRuns(values, compareText);
    const rounds = optionalInteger(values, 'rounds', { min: 1, max: 100 }) ?? 1;
    const modelDir = await resolveModelDir(values, seed);
    const requests = loadDataset(values, modelDir, numPrompts, seed);
    return runComparison({ modelDir, requests, runs, rounds, jsonPath, traceOutputs });
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (isAutoPair(values)) {
    // The pair depends on the workload, so the model and requests come first here.
    const modelDir = await resolveModelDir(values, seed);
    const requests = loadDataset(values, modelDir, numPrompts, seed);
    await resolveAutoPair(values, modelDir, requests, log);
    return benchOnce(values, modelDir, requests, jsonPath, traceOutputs, log);
  }
  const settings = readEngineSettings(values);
  const modelDir = await resolveModelDir(values, seed);
  const requests = loadDataset(values, modelDir, numPrompts, seed);
  return benchOnce(values, modelDir, requests, jsonPath, traceOutputs, log, settings);
}

async function benchOnce(
  values: FlagValues,
  modelDir: string,
  requests: readonly BenchRequest[],
  jsonPath: string | undefined,
  traceOutputs: TraceOutputs,
  log: (line: string) => void,
  settings: EngineSettings = readEngineSettings(values),
): Promise<number> {
  if (isTraceWanted(traceOutputs)) settings.recorder = new TraceRecorder();
  const result = await runBench(modelDir, requests, settings, log);
  process.stdout.write(formatBenchReport(result));
  if (jsonPath !== undefined) writeFileSync(jsonPath, `${JSON.stringify(benchJson(result), null, 2)}\n`);
  if (settings.recorder) {
    const row = compareRowOf(runLabel(settings), result);
    const written = writeTraceOutputs(traceOutputs, [{ name: row.label, events: settings.recorder.events }], {
      title: `seesaw bench ${row.label}`,
      subtitle: `${basename(resolve(modelDir))}: ${result.numRequests} requests`,
      table: compareGrid([row]),
    });
    for (const line of written) log(line);
  }
  return 0;
}
