/**
 * The device side of a remote job once every device's link is attached: names that carry the
 * host, and the shards loaded (replica-loading.ts's plan, as a LocalCluster's).
 */
import { Checkpoint, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import type { EngineConfig, KvCacheDType, Ready } from '@seesaw/protocol';
import type { DeviceActorHandle } from '../cluster/device-actor-handle.ts';
import { shardLoads } from '../cluster/replica-loading.ts';

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

/**
 * Each device's budget for weights plus KV cache. Read where the coordinator runs: the model
 * directory must be visible here too.
 */
export function jobDeviceMemoryBytes({ model, cache }: EngineConfig): number {
  return cache.deviceMemoryBytes ?? Checkpoint.tensorBytesOf(model.dir) + cache.kvCacheBytes;
}

/**
 * Loads every device's shard of `parallel` (all at once); ready[device]. A Seesaw job passes its
 * decode layout as `otherLayout`, so a host weight cache holds both layouts' shards from load on.
 */
export function loadShards(
  actors: readonly DeviceActorHandle[],
  parallel: ParallelConfig,
  config: ModelConfig,
  engineConfig: EngineConfig,
  kvDtype: KvCacheDType,
  otherLayout?: ParallelConfig,
): Promise<Ready[]> {
  const loads = shardLoads(parallel, config, {
    modelDir: engineConfig.model.dir,
    numThreads: engineConfig.parallel.numThreadsPerDevice ?? 1,
    deviceMemoryBytes: jobDeviceMemoryBytes(engineConfig),
    blockSize: engineConfig.cache.blockSize,
    kvDtype,
    otherLayout,
  });
  return Promise.all(loads.map(({ rank, shard }) => actors[rank.device]!.load(shard)));
}
