import { InFlightSteps } from './in-flight-steps.ts';
import { LeastLoadedPlacement, withResolvedSeed } from './least-loaded-placement.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import {
  type PhasedDevice,
  SeesawEngine,
  type SeesawEngineOptions,
  type SeesawEngineStats,
} from './seesaw-engine.ts';

/** hostKv is each replica's share of the host tier, slot ids local to the replica (its device maps them). */
export type SeesawClusterEngineOptions = Omit<SeesawEngineOptions, 'replicaIndex'>;

/**
 * Seesaw over DP replicas: one SeesawEngine per replica (trace tracks 'replica N'), each
 * switching phase on its own. A request is placed when added, on the replica with the fewest
 * outstanding tokens (prompt + max output of its unfinished requests; ties to the lowest index),
 * by the LeastLoadedPlacement ClusterEngine uses too. A failure of any replica stops the run (no replica recovery).
 */
export class SeesawClusterEngine {
  readonly engines: SeesawEngine[];
  private readonly placement: LeastLoadedPlacement;
  private readonly engineIndexes: readonly number[];
  private readonly inFlight = new InFlightSteps();
  private failureError: Error | undefined;

  constructor(replicas: readonly PhasedDevice[], options: SeesawClusterEngineOptions) {
    if (replicas.length < 1) throw new RangeError('SeesawClusterEngine needs at least one replica');
    this.engines = replicas.map(
      (replica, index) => new SeesawEngine(replica, { ...options, replicaIndex: index }),
    );
    this.placement = new LeastLoadedPlacement(this.engines.length);
    this.engineIndexes = this.engines.map((_, index) => index);
  }

  /** The smallest length cap of the replicas. */
  get maxModelLen(): number {
    return Math.min(...this.engines.map((engine) => engine.maxModelLen));
  }

  /** Queues a request on the least loaded replica; throws RequestRejectedError like SeesawEngine. */
  addRequest(request: EngineRequest): void {
    if (this.failureError) throw this.failureError;
    // One seed for the request wherever it runs.
    const resolved = withResolvedSeed(request);
    this.placement.place(resolved, this.engineIndexes, (engine) => this.engines[engine].addRequest(resolved));
  }

  hasUnfinishedRequests(): boolean {
    return this.inFlight.size > 0 || this.engines.some((engine) => engine.hasUnfinishedRequests());
  }

  /** Starts a step on every idle replica with work, waits for the first to finish, returns its finished requests. */
  async step(): Promise<RequestOutput[]> {
    if (this.failureError) throw this.failureError;
    for (const [index, engine] of this.engines.entries()) this.inFlight.startIfIdle(index, engine);
    if (this.inFlight.size === 0) return [];
    const settled = await this.inFlight.next();
    if ('error' in settled) {
      this.failureError = settled.error;
      throw settled.error;
    }
    this.placement.release(settled.outputs);
    return settled.outputs;
  }

  async run(onFinished?: (out: RequestOutput) => void): Promise<SeesawEngineStats> {
    while (this.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  /** Per-replica stats summed: counts and times add up (times are summed over replicas, not wall). */
  get stats(): SeesawEngineStats {
    const all = this.engines.map((engine) => engine.stats);
    const total = { ...all[0] };
    for (const stats of all.slice(1)) {
      for (const key of Object.keys(total) as (keyof SeesawEngineStats)[]) total[key] += stats[key];
    }
    return total;
  }

  /** Each replica's own stats. */
  get replicaStats(): SeesawEngineStats[] {
    return this.engines.map((engine) => engine.stats);
  }
}
