import type { ModelConfig } from '@seesaw/model';
import type { ClusterProfile } from './hardware.ts';
import { searchSpace } from './search-space.ts';
import type { SimulationReport } from './sim-types.ts';
import type { SimulationOptions, SimulationTarget } from './simulate.ts';
import { type SimulationJob, SimulationPool } from './simulation-pool.ts';
import type { Workload } from './workloads.ts';

export interface SearchResult {
  /** Static configurations that ran every request, fastest first. */
  statics: SimulationReport[];
  /** Seesaw pairs that ran every request, fastest first. */
  pairs: SimulationReport[];
  /** Left out before simulating (memory, divisibility) or after (requests rejected). */
  excluded: Array<{ label: string; reason: string }>;
  bestStatic: SimulationReport | null;
  bestPair: SimulationReport | null;
  /** bestPair throughput / bestStatic throughput (NaN when either is missing). */
  gain: number;
}

export interface SearchOptions {
  simulation?: SimulationOptions;
  /** Worker threads for the simulations (default: one per core, at most 8; 0 = run inline). */
  numThreads?: number;
  /** Only static configurations, or only pairs (default both). */
  only?: 'static' | 'seesaw';
  /**
   * Candidates still running at pruneFactor x the best time of their list (static or pair)
   * are cut short and listed as excluded (default 2; Infinity simulates everything fully).
   */
  pruneFactor?: number;
}

/** The layout that decides how many steps a candidate simulates: its decode (or only) one. */
function decodePp(target: SimulationTarget): number {
  return target.kind === 'static' ? target.parallel.pp : target.decode.pp;
}

const byThroughput = (a: SimulationReport, b: SimulationReport): number =>
  b.totalTokensPerSecond - a.totalTokensPerSecond || a.label.localeCompare(b.label);

/**
 * Ranks every static configuration and every (prefill, decode) pair with equal DP of the
 * model on the cluster by simulated throughput on the workload. Runs with rejected requests
 * (a request longer than a layout's KV capacity) are excluded: they did less work.
 */
export async function searchConfigurations(
  config: ModelConfig,
  cluster: ClusterProfile,
  workload: Workload,
  options: SearchOptions = {},
): Promise<SearchResult> {
  const space = searchSpace(config, cluster, options.simulation);
  const targets: SimulationTarget[] = [
    ...(options.only === 'seesaw' ? [] : space.statics),
    ...(options.only === 'static' ? [] : space.pairs),
  ];
  // Two waves: candidates whose decode layout has the least PP (usually the fastest, and the
  // fewest steps to simulate) run fully first; the rest stop at pruneFactor x the best time
  // of their list so far, which can only drop candidates that would rank below it.
  const pruneFactor = options.pruneFactor ?? 2;
  const minPp = Math.min(...targets.map(decodePp));
  const first = targets.filter((target) => decodePp(target) === minPp);
  const second = targets.filter((target) => decodePp(target) !== minPp);
  const jobOf = (target: SimulationTarget, stopAfterSeconds?: number): SimulationJob => ({
    config,
    cluster,
    target,
    workload,
    options: { ...options.simulation, trace: false, stopAfterSeconds },
  });
  const pool = new SimulationPool(options.numThreads);
  let firstReports: SimulationReport[];
  let secondReports: SimulationReport[];
  try {
    firstReports = await pool.run(first.map((target) => jobOf(target)));
    const bestTime = (kind: SimulationTarget['kind']): number | undefined => {
      const done = firstReports.filter((report, i) => first[i].kind === kind && report.numRejected === 0);
      return done.length === 0
        ? undefined
        : Math.min(...done.map((report) => report.elapsedSeconds)) * pruneFactor;
    };
    secondReports = await pool.run(second.map((target) => jobOf(target, bestTime(target.kind))));
  } finally {
    await pool.close();
  }
  const ordered: Array<[SimulationTarget, SimulationReport]> = [
    ...first.map((target, i): [SimulationTarget, SimulationReport] => [target, firstReports[i]]),
    ...second.map((target, i): [SimulationTarget, SimulationReport] => [target, secondReports[i]]),
  ];
  const excluded = [...space.excluded];
  const statics: SimulationReport[] = [];
  const pairs: SimulationReport[] = [];
  for (const [target, report] of ordered) {
    if (report.numRejected > 0) {
      excluded.push({
        label: report.label,
        reason: `${report.numRejected} requests do not fit its KV cache`,
      });
    } else if (report.truncated) {
      excluded.push({
        label: report.label,
        reason: `slower than ${pruneFactor}x the best ${target.kind === 'static' ? 'static configuration' : 'pair'} (cut at ${report.elapsedSeconds.toFixed(0)} s)`,
      });
    } else if (target.kind === 'static') statics.push(report);
    else pairs.push(report);
  }
  statics.sort(byThroughput);
  pairs.sort(byThroughput);
  const bestStatic = statics[0] ?? null;
  const bestPair = pairs[0] ?? null;
  const gain =
    bestStatic && bestPair ? bestPair.totalTokensPerSecond / bestStatic.totalTokensPerSecond : Number.NaN;
  return { statics, pairs, excluded, bestStatic, bestPair, gain };
}

/**
 * The best Seesaw pair for `--prefill auto --decode auto`: the fastest simulated pair of the
 * model on `numDevices` devices of the profile (one host when that differs from the profile's
 * own device count) for the workload, as flag values ('P2', 'T2'), or null when no pair fits.
 */
export async function chooseSeesawPair(
  profile: ClusterProfile,
  config: ModelConfig,
  numDevices: number,
  workload: Workload,
  options: SearchOptions = {},
): Promise<{ prefill: string; decode: string; report: SimulationReport } | null> {
  const cluster =
    profile.numHosts * profile.devicesPerHost === numDevices
      ? profile
      : { ...profile, numHosts: 1, devicesPerHost: numDevices };
  const result = await searchConfigurations(config, cluster, workload, { ...options, only: 'seesaw' });
  if (result.bestPair === null) return null;
  const [prefill, decode] = result.bestPair.label.split('->');
  return { prefill, decode, report: result.bestPair };
}

/** The planner's overall best for `bench --prefill auto --decode auto`: a static layout or a pair. */
export type BestConfiguration =
  | { kind: 'static'; config: string; report: SimulationReport; bestPair: SimulationReport | null }
  | {
      kind: 'seesaw';
      prefill: string;
      decode: string;
      report: SimulationReport;
      bestStatic: SimulationReport | null;
    };

/**
 * Ranks statics and pairs together, as `plan` does, and returns the fastest of all: a static
 * layout wins when no pair beats it (plan's gain below 1x). Null when nothing fits.
 */
export async function chooseBestConfiguration(
  profile: ClusterProfile,
  config: ModelConfig,
  numDevices: number,
  workload: Workload,
  options: SearchOptions = {},
): Promise<BestConfiguration | null> {
  const cluster =
    profile.numHosts * profile.devicesPerHost === numDevices
      ? profile
      : { ...profile, numHosts: 1, devicesPerHost: numDevices };
  const { bestStatic, bestPair } = await searchConfigurations(config, cluster, workload, options);
  if (
    bestPair !== null &&
    (bestStatic === null || bestPair.totalTokensPerSecond > bestStatic.totalTokensPerSecond)
  ) {
    const [prefill, decode] = bestPair.label.split('->');
    return { kind: 'seesaw', prefill, decode, report: bestPair, bestStatic };
  }
  return bestStatic === null
    ? null
    : { kind: 'static', config: bestStatic.label, report: bestStatic, bestPair };
}
