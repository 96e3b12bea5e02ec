import type { ClusterProfile, DeviceProfile } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';
import type { ReplicaLayout } from './replica-layout.ts';

/**
 * Device KV blocks of one replica: every device of the replica holds its layers x KV heads of
 * the same blocks, so the count is the minimum over stages of
 *   (memory x utilisation - weights - activation reserve) / (blockSize x KV bytes per token).
 * 0 when the weights do not fit.
 */
export function deviceKvBlocks(device: DeviceProfile, layout: ReplicaLayout, blockSize: number): number {
  let blocks = Number.POSITIVE_INFINITY;
  for (const stage of layout.stages) {
    const free =
      device.memoryBytes * device.memoryUtilization -
      stage.weightBytesPerDevice -
      device.activationReserveBytes;
    blocks = Math.min(blocks, Math.floor(free / (blockSize * stage.kvBytesPerTokenPerDevice)));
  }
  return Math.max(0, blocks);
}

export interface HostKvCapacity {
  numSlots: number;
  /** One slot: blockSize tokens, all layers, K and V, all KV heads. */
  slotBytes: number;
}

/** The CPU KV tier of a replica: its devices' share of host RAM, in whole slots. */
export function hostKvCapacity(
  costs: ModelCosts,
  cluster: ClusterProfile,
  numDevicesInReplica: number,
  blockSize: number,
): HostKvCapacity {
  const slotBytes = blockSize * costs.kvBytesPerToken;
  const numSlots = Math.floor((cluster.hostMemoryBytesPerDevice * numDevicesInReplica) / slotBytes);
  return { numSlots, slotBytes };
}
