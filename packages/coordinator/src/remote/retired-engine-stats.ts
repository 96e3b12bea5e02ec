/**
 * A remote job's engine counters across re-plans: a re-plan retires the job's engine and starts
 * a new one, and the counters the retired engines reached stay part of the job's.
 */
import type { EngineStats } from '../engine.ts';
import type { JobEngineCluster } from './job-engine.ts';

export class RetiredEngineStats {
  /** Counters of the engines a re-plan retired, added to the current engine's. */
  private readonly retiredStats: Record<string, number> = {};

  /** The current engine's counters plus those of the engines re-plans retired. */
  plus(engine: JobEngineCluster | undefined): EngineStats {
    const stats: Record<string, number> = { ...this.retiredStats };
    for (const [key, value] of Object.entries(engine?.stats ?? {}))
      if (typeof value === 'number') stats[key] = (stats[key] ?? 0) + value;
    return stats as unknown as EngineStats;
  }

  /** Keeps the counters of an engine a re-plan retires. */
  add(engine: JobEngineCluster | undefined): void {
    for (const [key, value] of Object.entries(engine?.stats ?? {}))
      if (typeof value === 'number') this.retiredStats[key] = (this.retiredStats[key] ?? 0) + value;
  }
}
