/**
 * The one way a replica's devices are loaded and grouped, for local worker threads
 * (LocalCluster) and remote hosts (remote-replicas) alike: device = (dp * pp + stage) * tp +
 * tpRank (deviceRanks), layers balanced over the stages, every replica's actors as
 * `actors[ppStage][tpRank]`.
 */
import { balancedRange, formatParallelConfig, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import {
  type DeviceRank,
  deviceRanks,
  type KvCacheDType,
  type LoadShard,
  type Ready,
} from '@seesaw/protocol';
import type { DeviceActorHandle } from './device-actor-handle.ts';
import { ReplicaDevice } from './replica-device.ts';

/** What every device of a cluster loads alike. */
export interface ShardSettings {
  modelDir: string;
  numThreads: number;
  /** Each device's budget for weights plus KV cache, bytes. */
  deviceMemoryBytes: number;
  blockSize: number;
  /** KV cache element type; absent: f32. */
  kvDtype?: KvCacheDType;
  /** Devices return a sha256 of their weights (tests). */
  isWeightDigestReturned?: boolean;
  /**
   * Seesaw: the decode layout (same dp and devices per replica), whose shard devices with a host
   * weight cache then fill at load too (LoadShard.otherLayoutPosition).
   */
  otherLayout?: ParallelConfig;
}

/** Every device's loadShard in device order, with its rank. */
export function shardLoads(
  parallel: ParallelConfig,
  config: ModelConfig,
  settings: ShardSettings,
): Array<{ rank: DeviceRank; shard: Omit<LoadShard, 'tag'> }> {
  const { dp, tp, pp } = parallel;
  const parallelism = formatParallelConfig({ dp, tp, pp }, { allLetters: true });
  const other = settings.otherLayout;
  const otherRanks = other ? deviceRanks(other) : undefined;
  return deviceRanks(parallel).map((rank) => {
    const shard: Omit<LoadShard, 'tag'> = {
      modelDir: settings.modelDir,
      parallelism,
      dpRank: rank.dpRank,
      tpRank: rank.tpRank,
      ppStage: rank.ppStage,
      layers: balancedRange(config.numLayers, pp, rank.ppStage),
      numThreads: settings.numThreads,
      deviceMemoryBytes: settings.deviceMemoryBytes,
      blockSize: settings.blockSize,
    };
    if (settings.kvDtype !== undefined) shard.kvDtype = settings.kvDtype;
    if (settings.isWeightDigestReturned) shard.isWeightDigestReturned = true;
    const otherRank = otherRanks?.[rank.device];
    if (other && otherRank) {
      const { tp, pp } = other;
      shard.otherLayoutPosition = { tp, tpRank: otherRank.tpRank, pp, ppStage: otherRank.ppStage };
    }
    return { rank, shard };
  });
}

/** The loaded actors (device order) as one ReplicaDevice per DP replica. */
export function groupReplicas(
  actors: readonly DeviceActorHandle[],
  ready: readonly Ready[],
  parallel: ParallelConfig,
  blockSize: number,
): ReplicaDevice[] {
  const { dp, tp, pp } = parallel;
  return Array.from({ length: dp }, (_, dpRank) => {
    // Local index ppStage * tp + tpRank: the replica's devices in global device order.
    const devices = Array.from({ length: tp * pp }, (_, i) => dpRank * tp * pp + i);
    return new ReplicaDevice({
      dpRank,
      actors: devices.map((device) => actors[device]!),
      layouts: [parallel],
      ready: devices.map((device) => ready[device]!),
      blockSize,
    });
  });
}
