/**
 * The device side of a remote job once every device's link is attached: names that carry the
 * host, and the ReplicaDevices loaded and grouped as a LocalCluster's (replica-loading.ts).
 */
import { Checkpoint, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import type { EngineConfig, KvCacheDType } from '@seesaw/protocol';
import type { DeviceActorHandle } from '../cluster/device-actor-handle.ts';
import type { ReplicaDevice } from '../cluster/replica-device.ts';
import { groupReplicas, shardLoads } from '../cluster/replica-loading.ts';

/** 'device 3 (dp 1, pp 0, tp 1)@host-b': the host agent names its worker the same way. */
export function remoteDeviceName(device: number, parallel: ParallelConfig, host: string): string {
  const local = device % (parallel.tp * parallel.pp);
  const dpRank = Math.floor(device / (parallel.tp * parallel.pp));
  return `device ${device} (dp ${dpRank}, pp ${Math.floor(local / parallel.tp)}, tp ${local % parallel.tp})@${host}`;
}

/** The host part of a remote device's name. */
export function hostOfDevice(deviceName: string): string | undefined {
  const at = deviceName.lastIndexOf('@');
  return at < 0 ? undefined : deviceName.slice(at + 1);
}

/** Loads every device's shard (all at once) and groups the actors into DP replicas. */
export async function loadReplicas(
  actors: readonly DeviceActorHandle[],
  parallel: ParallelConfig,
  config: ModelConfig,
  engineConfig: EngineConfig,
  kvDtype: KvCacheDType,
): Promise<ReplicaDevice[]> {
  const { model, cache } = engineConfig;
  // Read where the coordinator runs: the model directory must be visible here too.
  const deviceMemoryBytes =
    cache.deviceMemoryBytes ?? Checkpoint.tensorBytesOf(model.dir) + cache.kvCacheBytes;
  const loads = shardLoads(parallel, config, {
    modelDir: model.dir,
    numThreads: engineConfig.parallel.numThreadsPerDevice ?? 1,
    deviceMemoryBytes,
    blockSize: cache.blockSize,
    kvDtype,
  });
  const ready = await Promise.all(loads.map(({ rank, shard }) => actors[rank.device]!.load(shard)));
  return groupReplicas(actors, ready, parallel, cache.blockSize);
}
