import type { ClusterProfile } from './hardware.ts';
import { modelPreset } from './model-presets.ts';
import { type SearchResult, searchConfigurations } from './search.ts';
import type { Workload } from './workloads.ts';

/** A full search run inline (tests share two cores; a worker pool would only add start-up). */
export function searchInline(
  model: string,
  cluster: ClusterProfile,
  workload: Workload,
): Promise<SearchResult> {
  return searchConfigurations(modelPreset(model), cluster, workload, { numThreads: 0, pruneFactor: 1.3 });
}

export function geometricMean(values: readonly number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

export function describeResult(result: SearchResult): string {
  return `best static ${result.bestStatic?.label} ${result.bestStatic?.totalTokensPerSecond.toFixed(0)} tok/s, best pair ${result.bestPair?.label} ${result.bestPair?.totalTokensPerSecond.toFixed(0)} tok/s, gain ${result.gain.toFixed(2)}`;
}
