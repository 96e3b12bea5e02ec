/**
 * The phased (Seesaw) part of a LocalCluster: checking the decode layout against the prefill
 * one, and one two-layout ReplicaDevice per DP replica over the loaded actors, sharing one planner.
 */
import {
  formatParallelConfig,
  type ModelConfig,
  type ParallelConfig,
  parseParallelConfig,
  type ReshardLinkRates,
  type ReshardRoute,
  validateForModel,
} from '@seesaw/model';
import type { Ready } from '@seesaw/protocol';
import type { DeviceActorHandle } from './device-actor-handle.ts';
import type { EngineHostKv } from './local-host-kv.ts';
import { ReplicaDevice } from './replica-device.ts';
import type { ReshardPlanner } from './replica-reshard.ts';
import { checkpointTensorBytes, createReshardPlanner } from './reshard-planner.ts';

/** The decode layout, checked against the model and the prefill layout (same dp, same devices per replica). */
export function phasedLayouts(
  prefill: ParallelConfig,
  decodeOption: ParallelConfig | string,
  config: ModelConfig,
): ParallelConfig {
  const decode = typeof decodeOption === 'string' ? parseParallelConfig(decodeOption) : decodeOption;
  validateForModel(decode, config);
  const perReplica = (p: ParallelConfig) => p.tp * p.pp;
  if (decode.dp !== prefill.dp || perReplica(decode) !== perReplica(prefill)) {
    throw new RangeError(
      `decode configuration ${formatParallelConfig(decode)} must keep the prefill configuration ` +
        `${formatParallelConfig(prefill)}'s dp (${prefill.dp}) and devices per replica (${perReplica(prefill)})`,
    );
  }
  return decode;
}

export interface PhasedPlannerSetup {
  modelDir: string;
  reshardRoute?: ReshardRoute;
  reshardRates?: ReshardLinkRates;
  deviceMemoryBytes: number;
  /**
   * Whether the devices keep both layouts' shards in a host weight cache (a local Seesaw
   * cluster's default: on unless false). With it the host route reloads each new shard whole
   * from that cache, as the paper's system does from pinned host memory.
   */
  hostWeightCache?: boolean;
}

/**
 * The cluster's planner, with both directions planned already: a switch that cannot fit a
 * device's memory is refused when the cluster starts, not at its first switch.
 */
export function createClusterPlanner(
  setup: PhasedPlannerSetup,
  config: ModelConfig,
  prefill: ParallelConfig,
  decode: ParallelConfig,
): ReshardPlanner {
  const planner = createReshardPlanner(config, checkpointTensorBytes(setup.modelDir), {
    route: setup.reshardRoute,
    rates: setup.reshardRates,
    deviceMemoryBytes: setup.deviceMemoryBytes,
    isHeldReloaded: setup.hostWeightCache !== false,
  });
  // One replica each (dp 1), as ReplicaDevice asks, so these plans are the ones reused.
  const [from, to] = [prefill, decode].map((p) => ({ dp: 1, tp: p.tp, pp: p.pp }));
  planner(from, to);
  planner(to, from);
  return planner;
}

export interface PhasedReplicasSetup {
  parallel: ParallelConfig;
  decode: ParallelConfig;
  blockSize: number;
  planner: ReshardPlanner;
  isWeightDigestReturned?: boolean;
  /** Each replica's share of the host KV tier (one store per replica, or per host on a coordinator). */
  engineHostKv: EngineHostKv | undefined;
  /** Every actor in global device order, loaded in layout 0. */
  actors: DeviceActorHandle[];
  ready: Ready[];
  log?: (line: string) => void;
}

/** Replica r drives devices [r * N, (r + 1) * N) and, with a host KV tier, the r-th equal range of its slots. */
export function createPhasedReplicas(setup: PhasedReplicasSetup): ReplicaDevice[] {
  const { parallel, decode, engineHostKv, actors, ready, log } = setup;
  const perReplica = parallel.tp * parallel.pp;
  const numSlots = engineHostKv?.numSlots;
  return Array.from({ length: parallel.dp }, (_, dpRank) => {
    const devices = Array.from({ length: perReplica }, (_, i) => dpRank * perReplica + i);
    return new ReplicaDevice({
      dpRank,
      actors: devices.map((device) => actors[device]),
      layouts: [parallel, decode],
      ready: devices.map((device) => ready[device]),
      blockSize: setup.blockSize,
      planner: setup.planner,
      hostSlots: numSlots === undefined ? undefined : { numSlots, slotOffset: dpRank * numSlots },
      isWeightDigestReturned: setup.isWeightDigestReturned,
      log: log && (parallel.dp > 1 ? (line) => log(`replica ${dpRank}: ${line}`) : log),
    });
  });
}
