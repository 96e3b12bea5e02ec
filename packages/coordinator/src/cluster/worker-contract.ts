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
  /**
   * TP group descriptor of this device per layout (0 prefill, 1 decode), undefined where that
   * layout has tp = 1. Present only for a phased (re-sharding) cluster; entry 0 equals `group`.
   */
  layoutGroups?: unknown[];
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
  /**
   * Pipeline links per layout of a phased cluster (0 prefill, 1 decode). Layout 0's ports are
   * the very same ports as `previous` / `next` (one port, referenced twice).
   */
  layouts?: Array<{ previous?: MessagePort; next?: MessagePort }>;
  /**
   * Weight-slice links of a phased cluster: a full mesh inside the replica, index = local device
   * index, undefined at this device's own index.
   */
  reshardPeers?: Array<MessagePort | undefined>;
}

/** Every port in `links`, once each, for the transfer list. */
export function linkTransferList(links: DeviceWorkerLinkPorts): MessagePort[] {
  const ports = [
    links.previous,
    links.next,
    links.kvStore,
    ...(links.layouts ?? []).flatMap((layout) => [layout.previous, layout.next]),
    ...(links.reshardPeers ?? []),
  ];
  return [...new Set(ports.filter((port): port is MessagePort => port !== undefined))];
}
