/**
 * Tests only: the pieces the hand-wired replicas (WorkerReplica, PhasedWorkerReplica) share: a
 * kv-store worker for the host KV tier, the coordinator's hello to each device, the loadShard
 * of device i at (stage, tpRank) = (i div tp, i mod tp), and tear-down.
 */
import type { Worker } from 'node:worker_threads';
import { hostKvLayoutFor, type KvStoreWorker, spawnKvStoreWorker } from '@seesaw/kv-store';
import { formatParallelConfig, type ModelConfig, shardSpec } from '@seesaw/model';
import {
  type CoordinatorToDevice,
  connectAndHello,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  type LoadShard,
  type WorkerPortEndpoint,
} from '@seesaw/protocol';

export type DeviceLink = WorkerPortEndpoint<CoordinatorToDevice, DeviceToCoordinator>;

/** A kv-store worker of `numSlots` slots (each blockSize tokens of every layer and KV head, f32), hello done. */
export async function startTestKvStore(
  token: string,
  config: ModelConfig,
  blockSize: number,
  numSlots: number,
): Promise<KvStoreWorker> {
  const layout = hostKvLayoutFor(config, blockSize);
  const slotBytes = layout.numLayers * 2 * layout.numKvHeads * blockSize * layout.headDim * 4;
  const kvStore = spawnKvStoreWorker(
    { name: 'test kv-store', token, layout, capacityBytes: numSlots * slotBytes, isLogged: false },
    { accept: INBOUND_TAGS.kvStoreToCoordinator },
  );
  await connectAndHello(kvStore.endpoint, { role: 'coordinator', name: 'test', token, timeoutMs: 60_000 });
  return kvStore;
}

/** The coordinator's hello to every device. */
export async function helloDevices(devices: readonly DeviceLink[], token: string): Promise<void> {
  await Promise.all(
    devices.map((link) =>
      connectAndHello(link, { role: 'coordinator', name: 'test', token, timeoutMs: 60_000 }),
    ),
  );
}

/** loadShard for local device `device` of replica D1T{tp}P{pp}, one compute thread. */
export function loadShardOf(
  config: ModelConfig,
  parallel: { tp: number; pp: number },
  device: number,
  options: {
    modelDir: string;
    deviceMemoryBytes: number;
    blockSize: number;
    isWeightDigestReturned?: boolean;
  },
): LoadShard {
  const { tp, pp } = parallel;
  const position = { tp, tpRank: device % tp, pp, ppStage: Math.floor(device / tp) };
  return {
    tag: 'loadShard',
    modelDir: options.modelDir,
    parallelism: formatParallelConfig({ dp: 1, tp, pp }, { allLetters: true }),
    dpRank: 0,
    tpRank: position.tpRank,
    ppStage: position.ppStage,
    layers: shardSpec(config, position).layers,
    numThreads: 1,
    deviceMemoryBytes: options.deviceMemoryBytes,
    blockSize: options.blockSize,
    ...(options.isWeightDigestReturned === undefined
      ? {}
      : { isWeightDigestReturned: options.isWeightDigestReturned }),
  };
}

/** Aborts every device, terminates the workers, then the kv-store worker if any. */
export async function closeTestReplica(
  devices: readonly DeviceLink[],
  workers: readonly Worker[],
  kvStore: KvStoreWorker | undefined,
): Promise<void> {
  for (const link of devices) link.post({ tag: 'shutdown', mode: 'abort' });
  await Promise.all(workers.map((worker) => worker.terminate()));
  if (kvStore) {
    kvStore.endpoint.close('test done');
    await kvStore.worker.terminate();
  }
}
