/**
 * `seesaw plan`: ranks every static configuration and every (prefill, decode) pair of a model
 * on a cluster by simulated throughput, fanning the simulations out over worker threads.
 */
import { writeFileSync } from 'node:fs';
import { formatSearchResult, searchConfigurations } from '@seesaw/planner';
import { optionalInteger, optionalString, parseFlags, UsageError } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readPlannerInputs } from './planner-flags.ts';

export const PLAN_FLAGS = commandFlagSpec('plan');

export async function planCommand(argv: string[]): Promise<number> {
  const values = parseFlags('plan', argv, PLAN_FLAGS);
  const inputs = readPlannerInputs(values, { workload: 'sharegpt' });
  const top = optionalInteger(values, 'top', { min: 1 }) ?? 5;
  const numThreads = optionalInteger(values, 'threads', { min: 0, max: 64 });
  const pruneText = optionalString(values, 'prune');
  const pruneFactor = pruneText === undefined ? undefined : Number(pruneText);
  if (pruneFactor !== undefined && !(pruneFactor >= 1))
    throw new UsageError(`--prune must be a number >= 1, got '${pruneText}'`);
  const startMs = performance.now();
  const result = await searchConfigurations(inputs.model, inputs.cluster, inputs.workload, {
    numThreads,
    pruneFactor,
    simulation: {
      dtypeBytes: inputs.dtypeBytes,
      kvBytesPerElement: inputs.kvBytesPerElement,
      maxNumBatchedTokens: inputs.maxNumBatchedTokens,
      maxNumSeqs: inputs.maxNumSeqs,
    },
  });
  const seconds = (performance.now() - startMs) / 1000;
  process.stdout.write(
    `plan: ${inputs.modelName} on ${inputs.cluster.name}, ${inputs.workload.name} (${inputs.workload.requests.length} requests); ` +
      `${result.statics.length + result.pairs.length + result.excluded.length} candidates in ${seconds.toFixed(1)} s\n\n`,
  );
  process.stdout.write(formatSearchResult(result, top));
  const jsonPath = optionalString(values, 'json');
  if (jsonPath !== undefined) {
    writeFileSync(
      jsonPath,
      `${JSON.stringify({ ...result, model: inputs.modelName, cluster: inputs.cluster.name }, null, 2)}\n`,
    );
  }
  return 0;
}
