/**
 * How a device worker is started: its workerData and the ports posted to it right after spawn.
 * One definition for both sides: the coordinator (local clusters, host agents) builds these and
 * gpu-actor's device worker reads them. Every field is plain, structured-cloneable data.
 */
import type { MessagePort } from 'node:worker_threads';

/**
 * workerData of a device worker (next to spawnWorkerEndpoint's own keys). `Group` is a TP group
 * descriptor (gpu-actor's SharedMemoryGroupDescriptor); the coordinator passes it along unread.
 */
export interface DeviceWorkerData<Group = unknown> {
  /** Cluster secret the coordinator's hello must carry; pipeline links use it too. */
  token: string;
  /** Name for logs and hellos, e.g. 'device 3 (D1T2P2 dp0 pp1 tp1)'. */
  deviceName: string;
  /** This rank's slot in its (dp, stage) tensor-parallel group; present when tp > 1. */
  group?: Group;
  /** How long a collective waits for peers before failing the step. */
  groupTimeoutMs?: number;
  /**
   * A re-sharding device: its TP group descriptor per layout (0 prefill, 1 decode), undefined
   * where that layout has tp = 1. Entry 0, when present, is the same group as `group`.
   */
  layoutGroups?: Array<Group | undefined>;
  /**
   * A re-sharding device keeps its shard under each layout in host memory (filled at load and
   * at its first switch into a layout), so later switches' host pieces are memory copies.
   */
  hostWeightCache?: boolean;
}

/**
 * A device worker's links: `previous` to stage s-1 (activations in), `next` to stage s+1
 * (activations out), each joining TP rank r of one stage to TP rank r of the other.
 */
export interface DeviceWorkerLinkPorts {
  previous?: MessagePort;
  next?: MessagePort;
  /**
   * A TP group spanning hosts (no shared memory): tpPeers[r] links to TP rank r of this stage
   * (undefined at this rank's own index), directly or through the host agents.
   */
  tpPeers?: Array<MessagePort | undefined>;
  /**
   * A re-sharding device whose TP group of some layout spans hosts: that layout's tpPeers (as
   * tpPeers above; entry 0, when present, is tpPeers itself). Absent for a layout: its group is
   * the shared-memory one in workerData.layoutGroups.
   */
  layoutTpPeers?: Array<Array<MessagePort | undefined> | undefined>;
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
}

/**
 * Posted once on the Worker's own port right after it starts. MessagePorts cannot travel inside
 * workerData through spawnWorkerEndpoint (only its own port is in the transfer list), so the
 * links come this way.
 */
export interface DeviceWorkerLinks {
  seesawLinks: DeviceWorkerLinkPorts;
}

/** Every port in `links`, once each, for the transfer list. */
export function linkTransferList(links: DeviceWorkerLinkPorts): MessagePort[] {
  const ports = [
    links.previous,
    links.next,
    links.kvStore,
    ...(links.tpPeers ?? []),
    ...(links.layoutTpPeers ?? []).flatMap((peers) => peers ?? []),
    ...(links.layouts ?? []).flatMap((layout) => [layout.previous, layout.next]),
    ...(links.reshardPeers ?? []),
  ];
  return [...new Set(ports.filter((port): port is MessagePort => port !== undefined))];
}
