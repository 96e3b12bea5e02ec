/**
 * What a device worker is started with. The coordinator builds these without importing this
 * package (it has a structurally equal copy), so every field is plain, structured-cloneable data.
 */
import type { MessagePort } from 'node:worker_threads';
import { createSharedMemoryGroup, type SharedMemoryGroupDescriptor } from './shared-memory-group.ts';

/** workerData of a device worker (next to spawnWorkerEndpoint's own keys). */
export interface DeviceWorkerData {
  /** Cluster secret the coordinator's hello must carry; pipeline links use it too. */
  token: string;
  /** Name for logs and hellos, e.g. 'device 3 (D1T2P2 dp0 pp1 tp1)'. */
  deviceName: string;
  /** This rank's slot in its (dp, stage) tensor-parallel group; present when tp > 1. */
  group?: SharedMemoryGroupDescriptor;
  /** How long a collective waits for peers before failing the step. */
  groupTimeoutMs?: number;
  /**
   * A re-sharding device: its TP group descriptor per layout (0 prefill, 1 decode), undefined
   * where that layout has tp = 1. Entry 0, when present, is the same group as `group`.
   */
  layoutGroups?: Array<SharedMemoryGroupDescriptor | undefined>;
}

/**
 * Posted once on the Worker's own port right after it starts. MessagePorts cannot travel inside
 * workerData through spawnWorkerEndpoint (only its own port is in the transfer list), so the
 * pipeline links come this way: `previous` to stage s-1 (activations in), `next` to stage s+1
 * (activations out), each joining TP rank r of one stage to TP rank r of the other.
 */
export interface DeviceWorkerLinks {
  seesawLinks: {
    previous?: MessagePort;
    next?: MessagePort;
    /**
     * A TP group spanning hosts (no shared memory): tpPeers[r] links to TP rank r of this
     * stage (undefined at this rank's own index), directly or through the host agents.
     */
    tpPeers?: Array<MessagePort | undefined>;
    /**
     * Link to the host's kv-store actor (the host KV tier): this rank swaps its layers x KV heads
     * of preempted sequences there. Absent: a step that swaps fails.
     */
    kvStore?: MessagePort;
    /**
     * A re-sharding device: its pipeline links per layout (0 prefill, 1 decode). Layout 0's may
     * instead come as `previous` / `next` (or be the very same ports).
     */
    layouts?: Array<{ previous?: MessagePort; next?: MessagePort }>;
    /**
     * A re-sharding device: links to every other device of its replica for weight pieces,
     * index = local device index, undefined at this device's own index.
     */
    reshardPeers?: Array<MessagePort | undefined>;
  };
}

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
