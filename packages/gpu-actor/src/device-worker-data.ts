/**
 * What a device worker is started with: the contract is @seesaw/protocol's (the coordinator
 * builds it without importing this package); here are this package's sizes and entry module.
 */
import type { DeviceWorkerData as DeviceWorkerDataOf } from '@seesaw/protocol';
import { createSharedMemoryGroup, type SharedMemoryGroupDescriptor } from './shared-memory-group.ts';

export type { DeviceWorkerLinks } from '@seesaw/protocol';

/** workerData of a device worker: the protocol's contract with this package's TP group descriptor. */
export type DeviceWorkerData = DeviceWorkerDataOf<SharedMemoryGroupDescriptor>;

/** How long a collective waits for peers before failing the step, unless workerData says. */
export const DEFAULT_GROUP_TIMEOUT_MS = 30_000;

/**
 * Floats of each rank's slot in a worker TP group: 256 tokens of a 1024-wide hidden state per
 * round; larger collectives go through in several rounds.
 */
export const DEVICE_GROUP_CAPACITY_FLOATS = 1 << 18;

/** One shared region per TP group; descriptor r goes to the worker of TP rank r. */
export function createDeviceWorkerGroup(size: number): SharedMemoryGroupDescriptor[] {
  return createSharedMemoryGroup(size, DEVICE_GROUP_CAPACITY_FLOATS);
}

/** The device worker's entry module, for spawnWorkerEndpoint. */
export function deviceWorkerUrl(): URL {
  return new URL('./device-worker.ts', import.meta.url);
}
