/**
 * How the coordinator starts a device worker. The coordinator does not import gpu-actor code, so
 * this mirrors gpu-actor's DeviceWorkerData / DeviceWorkerLinks structurally; the cluster tests
 * run both sides together.
 */
import type { MessagePort } from 'node:worker_threads';

export interface DeviceWorkerSpawnData {
  /** Cluster secret; the worker refuses a hello without it. */
  token: string;
  /** Name for logs and hellos. */
  deviceName: string;
  /** Opaque TP group descriptor made by the caller's createTpGroup; present when tp > 1. */
  group?: unknown;
  /** How long a collective waits for peers before failing the step. */
  groupTimeoutMs?: number;
}

/**
 * Pipeline links, posted once on the Worker's own port right after spawn (MessagePorts cannot
 * ride in spawnWorkerEndpoint's workerData): `previous` receives activations from stage s-1,
 * `next` sends them to stage s+1, `kvStore` reaches the host's kv-store actor.
 */
export interface DeviceWorkerLinkPorts {
  previous?: MessagePort;
  next?: MessagePort;
  /** Link to the host's kv-store worker (host KV tier), when the cluster has one. */
  kvStore?: MessagePort;
}
