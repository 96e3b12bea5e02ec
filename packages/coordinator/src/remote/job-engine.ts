/**
 * The engine a remote job runs over its attached devices: the static ClusterEngine (one layout),
 * or, for a job with a decode layout, the same SeesawClusterEngine over two-layout
 * ReplicaDevices that a local phased cluster runs (phased-replicas.ts), so Seesaw across hosts
 * is the local engine with its device links relayed.
 */
import { expectedTensors, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import type { EngineConfig, KvCacheDType } from '@seesaw/protocol';
import { ClusterEngine } from '../cluster/cluster-engine.ts';
import type { DeviceActorHandle } from '../cluster/device-actor-handle.ts';
import type { EngineHostKv } from '../cluster/local-host-kv.ts';
import { createClusterPlanner, createPhasedReplicas, phasedLayouts } from '../cluster/phased-replicas.ts';
import type { ReplicaDevice } from '../cluster/replica-device.ts';
import { groupReplicas } from '../cluster/replica-loading.ts';
import type { ReshardPlanner } from '../cluster/replica-reshard.ts';
import type { EngineStats } from '../engine.ts';
import type { ReplicaCluster, ReplicaEngine } from '../replica-cluster.ts';
import { SeesawClusterEngine } from '../seesaw-cluster-engine.ts';
import { jobDeviceMemoryBytes, loadShards } from './remote-replicas.ts';

/** A Seesaw job's decode layout and re-shard planner, checked before any device starts. */
export interface SeesawJobPlan {
  decode: ParallelConfig;
  planner: ReshardPlanner;
}

/**
 * The Seesaw part of a job, or undefined for a static one. Refuses a decode layout that does not
 * pair with the prefill one, a re-shard that cannot fit a device, and a job without a host KV
 * tier (the Seesaw scheduler parks every prefilled sequence's KV there).
 */
export function planSeesawJob(
  engineConfig: EngineConfig,
  config: ModelConfig,
  prefill: ParallelConfig,
): SeesawJobPlan | undefined {
  const { parallel, cache, model } = engineConfig;
  if (parallel.decodeLayout === undefined) return undefined;
  if (cache.hostKvBytes === undefined) {
    throw new Error(
      'a Seesaw job (decodeLayout) needs the host KV tier (cache.hostKvBytes): prefill parks every sequence there',
    );
  }
  const decode = phasedLayouts(prefill, parallel.decodeLayout, config);
  const planner = createClusterPlanner(
    {
      modelDir: model.dir,
      reshardRoute: parallel.reshardRoute,
      deviceMemoryBytes: jobDeviceMemoryBytes(engineConfig),
      // Whole shards reloaded only when every host surely keeps the cache: with the default, a host
      // short of memory goes without, and its host pieces are checkpoint reads (keeping pays then).
      hostWeightCache: parallel.hostWeightCache === 'on',
    },
    config,
    prefill,
    decode,
  );
  return { decode, planner };
}

/** Parameters of the model, from the tensor shapes its config implies (for the swap cost model). */
function numModelParams(config: ModelConfig): number {
  return expectedTensors(config).reduce((sum, tensor) => sum + tensor.shape.reduce((a, b) => a * b, 1), 0);
}

/** ClusterEngine or SeesawClusterEngine: both count steps (EngineStats) for the job's metrics. */
export type JobEngineCluster = ReplicaCluster<ReplicaEngine & { readonly stats: EngineStats }>;

export interface JobEngine {
  engine: JobEngineCluster;
  replicas: ReplicaDevice[];
}

/** Loads every shard (layout 0 for Seesaw) and puts the job's engine over the replicas. */
export async function startJobEngine(
  actors: readonly DeviceActorHandle[],
  parallel: ParallelConfig,
  seesaw: SeesawJobPlan | undefined,
  config: ModelConfig,
  engineConfig: EngineConfig,
  engineHostKv: EngineHostKv | undefined,
  kvDtype: KvCacheDType,
  log: (line: string) => void,
): Promise<JobEngine> {
  const { cache, scheduler } = engineConfig;
  const ready = await loadShards(actors, parallel, config, engineConfig, kvDtype, seesaw?.decode);
  const common = {
    maxNumSeqs: scheduler.maxNumSeqs,
    maxModelLen: config.maxPositionEmbeddings,
    eosTokenIds: config.eosTokenIds,
    log,
  };
  if (!seesaw) {
    const replicas = groupReplicas([...actors], ready, parallel, cache.blockSize);
    const engine = new ClusterEngine(replicas, parallel.pp, {
      ...common,
      maxNumBatchedTokens: scheduler.maxNumBatchedTokens,
      hostKv: engineHostKv,
      preemptionMode: cache.preemptionMode,
      numModelParams: numModelParams(config),
    });
    return { engine, replicas };
  }
  if (!engineHostKv) throw new Error('a Seesaw job needs its host KV tier');
  const replicas = createPhasedReplicas({
    parallel,
    decode: seesaw.decode,
    blockSize: cache.blockSize,
    planner: seesaw.planner,
    engineHostKv,
    actors: [...actors],
    ready,
    log,
  });
  const engine = new SeesawClusterEngine(replicas, {
    ...common,
    hostKv: engineHostKv,
    maxNumBatchedTokens: scheduler.prefillTokenBudget,
    watermark: scheduler.watermark,
    hostLowMark: scheduler.hostLowMark,
    // As the static ClusterEngine: a replica lost with its host is closed, its requests start
    // over on the others.
    onReplicaLost: (r) => replicas[r]!.abort(),
  });
  return { engine, replicas };
}
