/**
 * A LocalCluster with a ClusterEngine in front that survives lost devices: a lost replica's
 * requests go to the surviving replicas (ClusterEngine), and when no replica is left the run is
 * re-planned (replanConfig) onto the devices still healthy, a new LocalCluster is started on that
 * configuration and the unfinished requests resume there from their prompts. When no valid
 * configuration is left, or the new cluster cannot start, the run stops with ClusterStoppedError
 * naming every lost device. Requests already returned by step() are never touched.
 *
 * "Healthy" counts devices, not actors: a lost replica's other actors are closed, but their
 * devices are healthy and count for the re-plan. Each lost device is one fewer.
 */
import {
  formatParallelConfig,
  loadModelConfig,
  type ModelConfig,
  numDevices,
  type ParallelConfig,
  parseParallelConfig,
} from '@seesaw/model';
import type { EngineOptions, EngineStats } from '../engine.ts';
import { ClusterEngine } from './cluster-engine.ts';
import { LocalCluster, type LocalClusterOptions } from './local-cluster.ts';
import { ClusterStoppedError, type ReplicasLostError } from './recovery-errors.ts';
import { replanConfig } from './replan.ts';
import { ReplanningRun } from './replanning-run.ts';

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export interface RecoveringClusterOptions {
  cluster: LocalClusterOptions;
  /** maxModelLen and eosTokenIds default to the model's. */
  engine?: Partial<EngineOptions>;
  /** Fewest devices one replica may span after a re-plan (the weights do not fit on fewer). Default 1. */
  minDevicesPerReplica?: number;
  /** Recovery events: lost devices, requeued requests, re-plans. */
  log?: (line: string) => void;
}

/** One re-plan: the configuration given up, the one resumed on, and how much moved. */
export interface ReplanEvent {
  from: ParallelConfig;
  to: ParallelConfig;
  numHealthy: number;
  numRequeued: number;
}

export class RecoveringCluster extends ReplanningRun<ClusterEngine> {
  private numHealthyDevices: number;
  private readonly allLostDevices: string[] = [];
  private readonly replanEvents: ReplanEvent[] = [];
  private retiredStats: EngineStats | undefined;

  private constructor(
    private readonly options: RecoveringClusterOptions,
    readonly config: ModelConfig,
    current: LocalCluster,
    currentEngine: ClusterEngine,
  ) {
    super(current, currentEngine);
    this.numHealthyDevices = numDevices(current.parallel);
  }

  static async start(options: RecoveringClusterOptions): Promise<RecoveringCluster> {
    const parallel =
      typeof options.cluster.parallel === 'string'
        ? parseParallelConfig(options.cluster.parallel)
        : options.cluster.parallel;
    const config = loadModelConfig(options.cluster.modelDir);
    const cluster = await LocalCluster.start({ ...options.cluster, parallel });
    try {
      const engine = RecoveringCluster.engineFor(cluster, options);
      return new RecoveringCluster(options, config, cluster, engine);
    } catch (error) {
      // The workers are up: stop them, or a device that keeps its thread alive (a WebGPU
      // device holds Dawn's event loop) keeps the process from ever exiting.
      await cluster.close({ mode: 'abort' });
      throw error;
    }
  }

  private static engineFor(cluster: LocalCluster, options: RecoveringClusterOptions): ClusterEngine {
    return new ClusterEngine(cluster.replicas, cluster.parallel.pp, {
      maxModelLen: cluster.config.maxPositionEmbeddings,
      eosTokenIds: cluster.config.eosTokenIds,
      // The host KV tier is split per engine, so a re-planned cluster's engines get their own share.
      hostKv: cluster.engineHostKv,
      ...options.engine,
      log: options.log,
    });
  }

  get replans(): readonly ReplanEvent[] {
    return this.replanEvents;
  }

  /** Every device lost so far, named with the configuration it was part of. */
  get lostDevices(): readonly string[] {
    return this.allLostDevices;
  }

  /** Counters over every engine of the run, re-planned ones included. */
  get stats(): EngineStats {
    const stats = { ...this.currentEngine.stats };
    if (this.retiredStats) {
      for (const key of Object.keys(stats) as Array<keyof EngineStats>) stats[key] += this.retiredStats[key];
    }
    return stats;
  }

  protected async replan(lost: ReplicasLostError): Promise<void> {
    const from = this.current.parallel;
    const fromName = formatParallelConfig(from);
    for (const device of lost.lostDevices) this.allLostDevices.push(`${device} of ${fromName}`);
    this.numHealthyDevices -= lost.lostDevices.length;
    const requests = lost.unfinishedRequests;
    const requestIds = requests.map((request) => request.requestId);
    await this.currentEngine.closeLostReplicas();
    await this.current.close({ mode: 'abort' });
    this.addRetiredStats(this.currentEngine.stats);

    const to = replanConfig(from, this.numHealthyDevices, this.config, {
      minDevicesPerReplica: this.options.minDevicesPerReplica,
    });
    if (to === null) {
      this.stop(
        new ClusterStoppedError(
          this.allLostDevices,
          requestIds,
          `no valid configuration on the ${this.numHealthyDevices} healthy device` +
            `${this.numHealthyDevices === 1 ? '' : 's'} left`,
          { cause: lost },
        ),
      );
    }
    const toName = formatParallelConfig(to);
    this.options.log?.(
      `re-planned ${fromName} -> ${toName} on ${this.numHealthyDevices} healthy ` +
        `device${this.numHealthyDevices === 1 ? '' : 's'}; resuming ${requests.length} unfinished ` +
        `request${requests.length === 1 ? '' : 's'} there`,
    );
    try {
      this.current = await LocalCluster.start({ ...this.options.cluster, parallel: to });
    } catch (error) {
      this.stop(
        new ClusterStoppedError(
          this.allLostDevices,
          requestIds,
          `the re-planned ${toName} cluster did not start: ${messageOf(error)}`,
          { cause: error },
        ),
      );
    }
    try {
      this.currentEngine = RecoveringCluster.engineFor(this.current, this.options);
    } catch (error) {
      await this.current.close({ mode: 'abort' });
      this.stop(
        new ClusterStoppedError(
          this.allLostDevices,
          requestIds,
          `the re-planned ${toName} cluster cannot run: ${messageOf(error)}`,
          { cause: error },
        ),
      );
    }
    this.replanEvents.push({ from, to, numHealthy: this.numHealthyDevices, numRequeued: requests.length });
    try {
      for (const request of requests) this.currentEngine.addRequest(request);
    } catch (error) {
      await this.current.close({ mode: 'abort' });
      this.stop(
        new ClusterStoppedError(
          this.allLostDevices,
          requestIds,
          `a request does not fit the re-planned ${toName} cluster: ${messageOf(error)}`,
          { cause: error },
        ),
      );
    }
  }

  private stop(error: ClusterStoppedError): never {
    this.failureError = error;
    this.options.log?.(error.message);
    throw error;
  }

  private addRetiredStats(stats: EngineStats): void {
    if (!this.retiredStats) {
      this.retiredStats = { ...stats };
      return;
    }
    for (const key of Object.keys(stats) as Array<keyof EngineStats>) this.retiredStats[key] += stats[key];
  }
}
