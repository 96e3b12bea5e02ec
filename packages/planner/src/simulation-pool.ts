import { availableParallelism } from 'node:os';
import type { ModelConfig } from '@seesaw/model';
import { Piscina } from 'piscina';
import type { ClusterProfile } from './hardware.ts';
import type { SimulationReport } from './sim-types.ts';
import { type SimulationOptions, type SimulationTarget, simulate } from './simulate.ts';
import type { Workload } from './workloads.ts';

/** One simulation to run: plain data, so it can cross to a worker thread. */
export interface SimulationJob {
  config: ModelConfig;
  cluster: ClusterProfile;
  target: SimulationTarget;
  workload: Workload;
  options: SimulationOptions;
}

export function runSimulationJob(job: SimulationJob): Promise<SimulationReport> {
  return simulate(job.config, job.cluster, job.target, job.workload, job.options);
}

const WORKER_ENTRY = new URL('./simulation-worker.mjs', import.meta.url).href;

/**
 * Runs simulation jobs over a piscina pool of worker threads, started on first use and reused
 * until close() (a worker's start-up, loading the TypeScript sources, costs seconds), or
 * inline when it has no more than one thread.
 */
export class SimulationPool {
  readonly numThreads: number;
  private pool: Piscina | null = null;

  /** numThreads default: the cores, at most 8; 0 or 1 runs inline. */
  constructor(numThreads?: number) {
    this.numThreads = numThreads ?? Math.min(8, availableParallelism());
  }

  /** Reports in job order. */
  async run(jobs: readonly SimulationJob[]): Promise<SimulationReport[]> {
    if (this.numThreads <= 1 || jobs.length <= 1) {
      // One at a time, as a single thread would run them.
      const reports: SimulationReport[] = [];
      for (const job of jobs) reports.push(await runSimulationJob(job));
      return reports;
    }
    this.pool ??= new Piscina({
      filename: WORKER_ENTRY,
      minThreads: this.numThreads,
      maxThreads: this.numThreads,
    });
    const pool = this.pool;
    return Promise.all(jobs.map((job) => pool.run(job) as Promise<SimulationReport>));
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = null;
  }
}

/** One-off: runs the jobs on a fresh pool (see SimulationPool) and closes it. */
export async function runSimulations(
  jobs: readonly SimulationJob[],
  numThreads?: number,
): Promise<SimulationReport[]> {
  const pool = new SimulationPool(numThreads === undefined ? undefined : Math.min(numThreads, jobs.length));
  try {
    return await pool.run(jobs);
  } finally {
    await pool.close();
  }
}
