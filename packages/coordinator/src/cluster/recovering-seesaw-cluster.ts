/**
 * A local Seesaw run that survives losing every replica: a phased LocalCluster with a
 * SeesawClusterEngine in front (a lost replica's requests go to the others), and when no replica
 * is left the run is re-planned (rankedSeesawReplans) onto the devices still healthy: a new
 * phased cluster on the best pair that starts, else a static LocalCluster with a ClusterEngine
 * when no pair fits; the unfinished requests resume there from their prompts. When nothing is
 * left, or nothing starts, the run stops with ClusterStoppedError naming every lost device.
 * Requests already returned by step() are never touched. As RecoveringCluster, "healthy" counts
 * devices: a lost replica's other devices are closed but count for the re-plan.
 */
import { expectedTensors, formatParallelConfig, numDevices, type ParallelConfig } from '@seesaw/model';
import type { EngineStats } from '../engine.ts';
import { SeesawClusterEngine, type SeesawClusterEngineOptions } from '../seesaw-cluster-engine.ts';
import type { PhasedDevice } from '../seesaw-engine.ts';
import { ClusterEngine } from './cluster-engine.ts';
import { LocalCluster, type LocalClusterOptions } from './local-cluster.ts';
import { ClusterStoppedError, type ReplicasLostError } from './recovery-errors.ts';
import { ReplanningRun } from './replanning-run.ts';
import type { ReplicaDevice } from './replica-device.ts';
import { rankedSeesawReplans, type SeesawReplan } from './seesaw-replan.ts';

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export interface RecoveringSeesawClusterOptions {
  /** parallel is the prefill layout, decodeParallel the decode one. */
  cluster: LocalClusterOptions & { parallel: ParallelConfig; decodeParallel: ParallelConfig };
  /** The Seesaw engines' options (hostKv and onReplicaLost come from here). */
  engine: Omit<SeesawClusterEngineOptions, 'hostKv' | 'onReplicaLost'>;
  /** A static layout's step token budget, when the run falls back to one. */
  staticMaxNumBatchedTokens: number;
  /** Fewest devices (tp * pp) one copy of the weights must be spread over. Default 1. */
  minDevicesPerReplica?: number;
  /** Wraps each phased cluster's replicas before its engine drives them (memory watchers). */
  wrapReplicas?: (replicas: readonly ReplicaDevice[]) => PhasedDevice[];
  log?: (line: string) => void;
}

type RunEngine = SeesawClusterEngine | ClusterEngine;

export class RecoveringSeesawCluster extends ReplanningRun<RunEngine> {
  private numHealthyDevices: number;
  private readonly allLostDevices: string[] = [];
  private readonly retired: Record<string, number> = {};
  /** What the run is on now, e.g. 'prefill P2, decode T2' or 'D1T1P1'. */
  layoutName: string;

  private constructor(
    private readonly options: RecoveringSeesawClusterOptions,
    current: LocalCluster,
    currentEngine: RunEngine,
    private currentLayout: SeesawReplan,
  ) {
    super(current, currentEngine);
    this.numHealthyDevices = numDevices(current.parallel);
    this.layoutName = nameOf(currentLayout);
  }

  static async start(options: RecoveringSeesawClusterOptions): Promise<RecoveringSeesawCluster> {
    const layout: SeesawReplan = {
      kind: 'seesaw',
      prefill: options.cluster.parallel,
      decode: options.cluster.decodeParallel,
    };
    const { cluster, engine } = await RecoveringSeesawCluster.startLayout(options, layout);
    return new RecoveringSeesawCluster(options, cluster, engine, layout);
  }

  private static async startLayout(
    options: RecoveringSeesawClusterOptions,
    layout: SeesawReplan,
  ): Promise<{ cluster: LocalCluster; engine: RunEngine }> {
    const { decodeParallel: _decode, ...base } = options.cluster;
    const cluster = await LocalCluster.start(
      layout.kind === 'seesaw'
        ? { ...base, parallel: layout.prefill, decodeParallel: layout.decode }
        : { ...base, parallel: layout.parallel },
    );
    try {
      const hostKv = cluster.engineHostKv;
      if (hostKv === undefined) throw new Error('the cluster started without its host KV tier');
      if (layout.kind === 'static') {
        const { maxModelLen, eosTokenIds, maxNumSeqs, trace, log } = options.engine;
        const engine = new ClusterEngine(cluster.replicas, cluster.parallel.pp, {
          maxModelLen,
          eosTokenIds: [...eosTokenIds],
          maxNumSeqs,
          maxNumBatchedTokens: options.staticMaxNumBatchedTokens,
          hostKv,
          // The swap cost model's size of the model (a static engine may swap or recompute).
          numModelParams: expectedTensors(cluster.config).reduce(
            (sum, tensor) => sum + tensor.shape.reduce((a, b) => a * b, 1),
            0,
          ),
          ...(trace ? { trace } : {}),
          ...(log ? { log } : {}),
        });
        return { cluster, engine };
      }
      const replicas = cluster.phasedReplicas;
      const driven = options.wrapReplicas ? options.wrapReplicas(replicas) : replicas;
      const engine = new SeesawClusterEngine(driven, {
        ...options.engine,
        hostKv,
        onReplicaLost: (r) => replicas[r]!.abort(),
      });
      return { cluster, engine };
    } catch (error) {
      await cluster.close({ mode: 'abort' });
      throw error;
    }
  }

  /** Every device lost so far, named with the layout it was part of. */
  get lostDevices(): readonly string[] {
    return this.allLostDevices;
  }

  /** Counters over every engine of the run, re-planned ones included (Seesaw's when any ran). */
  get stats(): EngineStats & Record<string, number> {
    const stats: Record<string, number> = { ...this.retired };
    for (const [key, value] of Object.entries(this.currentEngine.stats))
      if (typeof value === 'number') stats[key] = (stats[key] ?? 0) + value;
    return stats as EngineStats & Record<string, number>;
  }

  protected async replan(lost: ReplicasLostError): Promise<void> {
    const fromName = this.layoutName;
    for (const device of lost.lostDevices) this.allLostDevices.push(`${device} of ${fromName}`);
    this.numHealthyDevices -= lost.lostDevices.length;
    const requests = lost.unfinishedRequests;
    const requestIds = requests.map((request) => request.requestId);
    await this.currentEngine.closeLostReplicas();
    await this.current.close({ mode: 'abort' });
    for (const [key, value] of Object.entries(this.currentEngine.stats))
      if (typeof value === 'number') this.retired[key] = (this.retired[key] ?? 0) + value;

    const from = this.currentLayout;
    const lostPair = from.kind === 'seesaw' ? from : { prefill: from.parallel, decode: from.parallel };
    const candidates = rankedSeesawReplans(lostPair, this.numHealthyDevices, this.current.config, {
      minDevicesPerReplica: this.options.minDevicesPerReplica,
    });
    const refusals: string[] = [];
    for (const layout of candidates) {
      let started: { cluster: LocalCluster; engine: RunEngine };
      try {
        started = await RecoveringSeesawCluster.startLayout(this.options, layout);
      } catch (error) {
        refusals.push(`${nameOf(layout)}: ${messageOf(error)}`);
        continue;
      }
      this.current = started.cluster;
      this.currentEngine = started.engine;
      this.currentLayout = layout;
      this.layoutName = nameOf(layout);
      this.options.log?.(
        `re-planned ${fromName} -> ${this.layoutName} on ${this.numHealthyDevices} healthy ` +
          `device${this.numHealthyDevices === 1 ? '' : 's'}; resuming ${requests.length} unfinished ` +
          `request${requests.length === 1 ? '' : 's'} there from their prompts`,
      );
      for (const request of requests) this.currentEngine.addRequest(request);
      return;
    }
    this.failureError = new ClusterStoppedError(
      this.allLostDevices,
      requestIds,
      `no layout to re-plan onto on the ${this.numHealthyDevices} healthy device` +
        `${this.numHealthyDevices === 1 ? '' : 's'} left${refusals.length ? ` (${refusals.join('; ')})` : ''}`,
      { cause: lost },
    );
    this.options.log?.(this.failureError.message);
    throw this.failureError;
  }
}

/** 'prefill P2, decode T2' or 'D1' (a static fallback). */
function nameOf(layout: SeesawReplan): string {
  return layout.kind === 'seesaw'
    ? `prefill ${formatParallelConfig(layout.prefill)}, decode ${formatParallelConfig(layout.decode)}`
    : formatParallelConfig(layout.parallel);
}
