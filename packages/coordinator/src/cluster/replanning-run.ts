/**
 * What a run that survives losing every replica does whatever it re-plans onto
 * (RecoveringCluster: a static layout; RecoveringSeesawCluster: a Seesaw pair or a static
 * fallback): an engine in front of the cluster running now, whose step() hands a
 * ReplicasLostError to the subclass's replan() and returns nothing for that call, and a failure
 * that, once seen, every later call throws. Requests already returned by step() are never touched.
 */
import type { EngineStats } from '../engine.ts';
import type { EngineRequest, RequestOutput } from '../request.ts';
import type { LocalCluster } from './local-cluster.ts';
import { ReplicasLostError } from './recovery-errors.ts';

/** The engine calls a replanning run makes (ClusterEngine and SeesawClusterEngine both have them). */
export interface ReplanningEngine {
  readonly maxModelLen: number;
  addRequest(request: EngineRequest): void;
  hasUnfinishedRequests(): boolean;
  step(): Promise<RequestOutput[]>;
  closeLostReplicas(): Promise<void>;
}

export abstract class ReplanningRun<Engine extends ReplanningEngine> {
  protected failureError: Error | undefined;
  private isClosed = false;

  protected constructor(
    protected current: LocalCluster,
    protected currentEngine: Engine,
  ) {}

  /** The cluster running now (a new one after each re-plan). */
  get cluster(): LocalCluster {
    return this.current;
  }

  get engine(): Engine {
    return this.currentEngine;
  }

  get maxModelLen(): number {
    return this.currentEngine.maxModelLen;
  }

  /** Counters over every engine of the run, re-planned ones included. */
  abstract get stats(): EngineStats;

  addRequest(request: EngineRequest): void {
    if (this.failureError) throw this.failureError;
    this.currentEngine.addRequest(request);
  }

  hasUnfinishedRequests(): boolean {
    return this.currentEngine.hasUnfinishedRequests();
  }

  /** The engine's step, re-planning when the last replica is lost (that call returns nothing). */
  async step(): Promise<RequestOutput[]> {
    if (this.failureError) throw this.failureError;
    try {
      return await this.currentEngine.step();
    } catch (error) {
      if (!(error instanceof ReplicasLostError)) {
        this.failureError = error instanceof Error ? error : new Error(String(error));
        throw error;
      }
      await this.replan(error);
      return [];
    }
  }

  async run(onFinished?: (output: RequestOutput) => void): Promise<EngineStats> {
    while (this.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  /** Stops the current cluster ('abort' after a failure). Idempotent. */
  async close(options: { mode: 'drain' | 'abort' } = { mode: 'drain' }): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.currentEngine.closeLostReplicas();
    await this.current.close(this.failureError ? { mode: 'abort' } : options);
  }

  /**
   * Moves the run onto the healthy devices: on return `current` and `currentEngine` are the new
   * cluster and engine with the unfinished requests added; throws (and sets failureError) when
   * there is nothing to move to.
   */
  protected abstract replan(lost: ReplicasLostError): Promise<void>;
}
