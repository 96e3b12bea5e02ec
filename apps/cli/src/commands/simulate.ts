/**
 * `seesaw simulate`: predicts what `seesaw bench` measures for one static configuration or one
 * Seesaw pair, from the cost model and the engine's own schedulers.
 */
import { writeFileSync } from 'node:fs';
import { type ParallelConfig, ParallelConfigError, parseParallelConfig } from '@seesaw/model';
import { formatSimulationReport, type SimulationTarget, simulate } from '@seesaw/planner';
import { type FlagValues, optionalChoice, optionalString, parseFlags, UsageError } from '../args.ts';
import { toChromeTrace } from '../chrome-trace.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readPlannerInputs } from './planner-flags.ts';

export const SIMULATE_FLAGS = commandFlagSpec('simulate');

function parallelFlag(values: FlagValues, name: string): ParallelConfig | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  try {
    return parseParallelConfig(text);
  } catch (error) {
    if (error instanceof ParallelConfigError) throw new UsageError(`--${name}: ${error.message}`);
    throw error;
  }
}

function readTarget(values: FlagValues): SimulationTarget {
  const config = parallelFlag(values, 'config');
  const prefill = parallelFlag(values, 'prefill');
  const decode = parallelFlag(values, 'decode');
  if (config !== undefined) {
    if (prefill !== undefined || decode !== undefined)
      throw new UsageError('--config is static: do not combine it with --prefill/--decode');
    return { kind: 'static', parallel: config };
  }
  if (prefill === undefined || decode === undefined)
    throw new UsageError('give --config X, or both --prefill X and --decode Y');
  return { kind: 'seesaw', prefill, decode };
}

export async function simulateCommand(argv: string[]): Promise<number> {
  const values = parseFlags('simulate', argv, SIMULATE_FLAGS);
  const target = readTarget(values);
  const inputs = readPlannerInputs(values, { workload: 'sharegpt' });
  const tracePath = optionalString(values, 'trace');
  const startMs = performance.now();
  let report: Awaited<ReturnType<typeof simulate>>;
  try {
    report = await simulate(inputs.model, inputs.cluster, target, inputs.workload, {
      dtypeBytes: inputs.dtypeBytes,
      kvBytesPerElement: inputs.kvBytesPerElement,
      maxNumBatchedTokens: inputs.maxNumBatchedTokens,
      maxNumSeqs: inputs.maxNumSeqs,
      reshardRoute: optionalChoice(values, 'reshard-route', ['auto', 'p2p', 'host'] as const),
      trace: tracePath !== undefined,
    });
  } catch (error) {
    if ((error as Error).name === 'InfeasibleConfigError') throw new UsageError((error as Error).message);
    throw error;
  }
  const wallSeconds = (performance.now() - startMs) / 1000;
  process.stdout.write(
    `simulate: ${inputs.modelName} on ${inputs.cluster.name}, ${inputs.workload.name} ` +
      `(${inputs.workload.requests.length} requests), simulated in ${wallSeconds.toFixed(2)} s\n`,
  );
  process.stdout.write(formatSimulationReport(report));
  if (tracePath !== undefined) {
    writeFileSync(tracePath, toChromeTrace(report.events ?? [], `simulated ${report.label}`));
    process.stdout.write(`wrote the trace (${report.events?.length ?? 0} events) to ${tracePath}\n`);
  }
  const jsonPath = optionalString(values, 'json');
  if (jsonPath !== undefined) {
    const { events: _events, ...rest } = report;
    writeFileSync(jsonPath, `${JSON.stringify({ ...rest, wallSeconds }, null, 2)}\n`);
  }
  return 0;
}
