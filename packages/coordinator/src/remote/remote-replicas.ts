/**
 * The device side of a remote job once every device's link is attached: names that carry the
 * host, each device's loadShard (the same layout as a LocalCluster: device =
 * (dp * pp + stage) * tp + tpRank, layers balanced over stages), and the ReplicaDevices.
 */
import {
  balancedRange,
  Checkpoint,
  formatParallelConfig,
  type ModelConfig,
  type ParallelConfig,
} from '@seesaw/model';
import type { EngineConfig, Ready } from '@seesaw/protocol';
import type { DeviceActorHandle } from '../cluster/device-actor-handle.ts';
import { ReplicaDevice } from '../cluster/replica-device.ts';

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
): Promise<ReplicaDevice[]> {
  const { model, cache } = engineConfig;
  const { dp, tp, pp } = parallel;
  const perReplica = tp * pp;
  // Read where the coordinator runs: the model directory must be visible here too.
  const deviceMemoryBytes =
    cache.deviceMemoryBytes ?? Checkpoint.tensorBytesOf(model.dir) + cache.kvCacheBytes;
  const ready: Ready[] = await Promise.all(
    actors.map((actor, device) => {
      const local = device % perReplica;
      const ppStage = Math.floor(local / tp);
      return actor.load({
        modelDir: model.dir,
        parallelism: formatParallelConfig({ dp, tp, pp }, { allLetters: true }),
        dpRank: Math.floor(device / perReplica),
        tpRank: local % tp,
        ppStage,
        layers: balancedRange(config.numLayers, pp, ppStage),
        numThreads: engineConfig.parallel.numThreadsPerDevice ?? 1,
        deviceMemoryBytes,
        blockSize: cache.blockSize,
      });
    }),
  );
  return Array.from({ length: dp }, (_, dpRank) => {
    const stages = Array.from({ length: pp }, (_, stage) =>
      Array.from({ length: tp }, (_, tpRank) => dpRank * perReplica + stage * tp + tpRank),
    );
    return new ReplicaDevice(
      dpRank,
      stages.map((devices) => devices.map((d) => actors[d]!)),
      stages.map((devices) => devices.map((d) => ready[d]!)),
      cache.blockSize,
    );
  });
}
