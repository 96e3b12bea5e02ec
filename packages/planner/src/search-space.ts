import { formatParallelConfig, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import { type ClusterProfile, clusterNumDevices } from './hardware.ts';
import { infeasibility, type ModelCostOptions, type SimulationTarget } from './simulate.ts';

function divisors(n: number): number[] {
  const result: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) result.push(d);
  return result;
}

/** Every DP x TP x PP using all `numDevices` (DP-major, then TP, then PP ascending). */
export function parallelConfigsOver(numDevices: number): ParallelConfig[] {
  const configs: ParallelConfig[] = [];
  for (const dp of divisors(numDevices)) {
    for (const tp of divisors(numDevices / dp)) configs.push({ dp, tp, pp: numDevices / dp / tp });
  }
  return configs;
}

export interface SearchSpace {
  statics: SimulationTarget[];
  pairs: SimulationTarget[];
  /** Configurations left out, with why (memory, head divisibility...). */
  excluded: Array<{ label: string; reason: string }>;
}

/**
 * The static configurations that can hold the model (TP dividing heads and KV heads, PP at
 * most the layers, weights fitting), and every ordered (prefill, decode) pair of two different
 * such configurations with equal DP.
 */
export function searchSpace(
  config: ModelConfig,
  cluster: ClusterProfile,
  options: ModelCostOptions = {},
): SearchSpace {
  const statics: SimulationTarget[] = [];
  const excluded: SearchSpace['excluded'] = [];
  for (const parallel of parallelConfigsOver(clusterNumDevices(cluster))) {
    const target: SimulationTarget = { kind: 'static', parallel };
    const reason = infeasibility(config, cluster, target, options);
    if (reason === null) statics.push(target);
    else excluded.push({ label: formatParallelConfig(parallel), reason });
  }
  const pairs: SimulationTarget[] = [];
  for (const a of statics) {
    for (const b of statics) {
      if (a.kind !== 'static' || b.kind !== 'static' || a === b || a.parallel.dp !== b.parallel.dp) continue;
      pairs.push({ kind: 'seesaw', prefill: a.parallel, decode: b.parallel });
    }
  }
  return { statics, pairs, excluded };
}
