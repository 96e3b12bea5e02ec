/**
 * `seesaw bench --compare seesaw:P2-T2,static:T2,static:P2 ...`: the same workload through each
 * configuration, one after another (each on its own freshly started local cluster, so no run
 * inherits another's warm state), then one side-by-side table, and with --json the rows.
 * With --rounds N every configuration runs N times, interleaved (compare-rounds.ts): the table
 * shows each configuration's median run and every round's figures; traces are of round 1.
 * The Seesaw tuning flags apply to the seesaw runs, --max-num-batched-tokens and --preemption to
 * the static ones; --threads, --max-num-seqs, --device-memory, --host-kv-memory and --backend
 * (with --gpus-per-adapter) to all. A run
 * that fails is reported and left out of the table (exit status 1); the others still run.
 */
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { TraceRecorder } from '@seesaw/coordinator';
import { type FlagValues, optionalByteSize, optionalInteger, UsageError } from '../args.ts';
import { checkWebGpuPlacement, readBackendSettings } from '../backend-flags.ts';
import type { BenchRequest } from '../bench-dataset.ts';
import type { TraceProcess } from '../chrome-trace.ts';
import {
  type CompareRounds,
  medianRows,
  medianShareOfBestStatic,
  roundOrder,
  roundTableLines,
  sharesOfBestStatic,
  tokensPerSecondByRound,
} from '../compare-rounds.ts';
import {
  type CompareRow,
  type CompareSpec,
  compareGrid,
  compareJson,
  compareRowOf,
  formatCompareTable,
  parseCompareSpecs,
} from '../compare-table.ts';
import type { EngineSettings } from '../engine-session.ts';
import { kvDtypeForBackend, readHostKvSettings } from '../host-kv-flags.ts';
import { readSeesawTuning } from '../seesaw-flags.ts';
import { isTraceWanted, type TraceOutputs, writeTraceOutputs } from '../trace-output.ts';
import { type BenchResult, runBench } from './bench.ts';

export interface CompareRun {
  spec: CompareSpec;
  settings: EngineSettings;
}

/** Flags that pick one configuration: --compare picks several instead. */
const SINGLE_RUN_FLAGS = ['config', 'devices', 'prefill', 'decode', 'profile', 'kv-cache-memory'] as const;

/** Each run's engine settings from the shared flags. */
export function readCompareRuns(values: FlagValues, compareText: string): CompareRun[] {
  for (const name of SINGLE_RUN_FLAGS) {
    if (values[name] !== undefined) {
      throw new UsageError(
        name === 'kv-cache-memory'
          ? '--kv-cache-memory does not apply to --compare: every run is a cluster; use --device-memory'
          : `--${name} does not apply to --compare: each run names its own configuration`,
      );
    }
  }
  const specs = parseCompareSpecs(compareText);
  const tuning = readSeesawTuning(values);
  const numThreads = optionalInteger(values, 'threads', { min: 1, max: 1024 });
  const maxNumSeqs = optionalInteger(values, 'max-num-seqs', { min: 1 });
  const maxNumBatchedTokens = optionalInteger(values, 'max-num-batched-tokens', { min: 1 });
  const deviceMemoryBytes = optionalByteSize(values, 'device-memory');
  const { hostKvBytes, preemptionMode, kvDtype: kvDtypeFlag } = readHostKvSettings(values);
  const { backend, gpusPerAdapter } = readBackendSettings(values);
  const kvDtype = kvDtypeForBackend(kvDtypeFlag, backend);
  return specs.map((spec): CompareRun => {
    const shared: EngineSettings = { numThreads, maxNumSeqs, hostKvBytes, ...(kvDtype ? { kvDtype } : {}) };
    const layout = spec.kind === 'seesaw' ? spec.prefill : spec.parallel;
    const numDevices = layout.dp * layout.tp * layout.pp;
    if (backend === 'webgpu') {
      // Every run on the GPU backend, refused up front (before any run starts) where it cannot be placed.
      checkWebGpuPlacement(numDevices, gpusPerAdapter);
      shared.backend = backend;
    }
    if (spec.kind === 'seesaw') {
      const seesaw = { prefill: spec.prefill, decode: spec.decode, numDevices, ...tuning };
      return {
        spec,
        settings: { ...shared, seesaw: deviceMemoryBytes ? { ...seesaw, deviceMemoryBytes } : seesaw },
      };
    }
    const cluster = {
      numDevices,
      parallel: spec.parallel,
      ...(deviceMemoryBytes ? { deviceMemoryBytes } : {}),
    };
    return { spec, settings: { ...shared, maxNumBatchedTokens, preemptionMode, cluster } };
  });
}

export interface ComparisonJob {
  modelDir: string;
  requests: readonly BenchRequest[];
  runs: readonly CompareRun[];
  /** How many times each run is made, interleaved (1: once each). */
  rounds: number;
  jsonPath?: string;
  traceOutputs: TraceOutputs;
}

export async function runComparison(job: ComparisonJob): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const rounds: Array<Map<string, CompareRow>> = [];
  const traces: TraceProcess[] = [];
  const failures: string[] = [];
  const roundTag = (round: number) => (job.rounds > 1 ? `round ${round + 1}/${job.rounds}, ` : '');
  for (let round = 0; round < job.rounds; round++) {
    const rows = new Map<string, CompareRow>();
    rounds.push(rows);
    for (const [position, index] of roundOrder(job.runs.length, round).entries()) {
      const run = job.runs[index];
      const tag = `${roundTag(round)}run ${position + 1}/${job.runs.length}`;
      log(`compare: ${tag}: ${run.spec.label}`);
      const recorder = round === 0 && isTraceWanted(job.traceOutputs) ? new TraceRecorder() : undefined;
      let result: BenchResult;
      try {
        result = await runBench(job.modelDir, job.requests, { ...run.settings, recorder }, log);
      } catch (error) {
        // One configuration that cannot run (too little memory, a lost worker) must not hide the others.
        const message = error instanceof Error ? error.message : String(error);
        const inRound = job.rounds > 1 ? ` (round ${round + 1}/${job.rounds})` : '';
        failures.push(`${run.spec.label}${inRound}: ${message}`);
        log(`compare: ${run.spec.label} failed: ${message}`);
        continue;
      }
      const row = compareRowOf(run.spec.label, result);
      rows.set(row.label, row);
      if (recorder) traces.push({ name: run.spec.label, events: recorder.events });
      log(
        `compare: ${run.spec.label}: ${row.totalTokensPerSecond.toFixed(2)} total tokens/s, ` +
          `${row.numSwitches} switches, ${result.numRejected} rejected (${row.elapsedSeconds.toFixed(2)} s: ` +
          `prefill ${row.prefillSeconds.toFixed(2)} s, decode ${row.decodeSeconds.toFixed(2)} s)`,
      );
    }
  }
  const labels = job.runs.map((run) => run.spec.label);
  const rows = medianRows(labels, rounds);
  if (rows.length === 0) throw new Error(`every run of the comparison failed:\n${failures.join('\n')}`);
  const extraLines = job.rounds > 1 ? roundTableLines(rounds) : [];
  process.stdout.write(formatCompareTable(rows, extraLines));
  if (job.jsonPath !== undefined)
    writeFileSync(
      job.jsonPath,
      `${JSON.stringify(comparisonJson(rows, job.rounds > 1 ? rounds : null), null, 2)}\n`,
    );
  if (isTraceWanted(job.traceOutputs)) {
    const written = writeTraceOutputs(job.traceOutputs, traces, {
      title: `seesaw bench --compare ${rows.map((row) => row.label).join(', ')}`,
      subtitle: `${basename(resolve(job.modelDir))}: ${job.requests.length} requests per run`,
      table: compareGrid(rows, extraLines),
    });
    for (const line of written) log(line);
  }
  if (failures.length > 0) {
    const total = job.runs.length * job.rounds;
    log(`compare: ${failures.length} of ${total} runs failed and are not in the table:`);
    for (const failure of failures) log(`  ${failure}`);
    return 1;
  }
  return 0;
}

/** --json's rows: each configuration's (median) run, and with several rounds every round's figures. */
function comparisonJson(rows: readonly CompareRow[], rounds: CompareRounds | null) {
  return compareJson(rows).map((json, index) => {
    if (rounds === null) return json;
    const label = rows[index].label;
    return {
      ...json,
      tokens_per_second_by_round: tokensPerSecondByRound(rounds, label),
      share_of_best_static_by_round: sharesOfBestStatic(rounds, label),
      share_of_best_static_median_of_rounds: medianShareOfBestStatic(rounds, label),
    };
  });
}
