/**
 * A host agent's share of one replica's wiring: the ports and TP group descriptors of the devices
 * it runs, for one layout (static) or two (Seesaw: layout 0 prefill, 1 decode). Local index
 * i = ppStage * tp + tpRank under each layout (the same worker under both). Per layout: the
 * pipeline links (wireReplicaPipeline, as a LocalCluster), and per stage a shared-memory TP group
 * when the whole stage is on this host, else TP peer links; for two layouts also a full mesh of
 * weight-slice links between the replica's devices. Every link comes from `link`, which makes a
 * MessageChannel when both ends are here and an agent-to-agent link otherwise.
 *
 * Every agent of the replica calls `link` for the pairs that span hosts in the same order (the
 * loops below do not depend on which devices are here, except that they skip stages wholly on
 * this host, whose pairs span no hosts), so the n-th call for a pair names the same link on both
 * hosts (DeviceChannel.linkIndex).
 */
import type { MessagePort } from 'node:worker_threads';
import type { DeviceWorkerLinkPorts } from '@seesaw/protocol';
import { type LinkEnds, wireReplicaPipeline } from '../cluster/layout-wiring.ts';

export interface ReplicaShape {
  tp: number;
  pp: number;
}

export interface AgentReplicaWiring {
  /** By local index; filled for the devices here. */
  links: DeviceWorkerLinkPorts[];
  /** By local index: each layout's shared-memory TP group descriptor (undefined: none or peer links). */
  groups: Array<Array<unknown | undefined>>;
}

/** One layout's TP groups: descriptors by local index, or peer ports where a stage spans hosts. */
function wireTpGroups(
  { tp, pp }: ReplicaShape,
  isHere: (local: number) => boolean,
  link: (a: number, b: number) => LinkEnds<MessagePort>,
  createTpGroup: (size: number) => unknown[],
): { descriptors: Array<unknown | undefined>; peers: Array<Array<MessagePort | undefined> | undefined> } {
  const descriptors: Array<unknown | undefined> = new Array(tp * pp).fill(undefined);
  const peers: Array<Array<MessagePort | undefined> | undefined> = new Array(tp * pp).fill(undefined);
  if (tp === 1) return { descriptors, peers };
  for (let stage = 0; stage < pp; stage++) {
    const ranks = Array.from({ length: tp }, (_, r) => stage * tp + r);
    if (ranks.every(isHere)) {
      const group = createTpGroup(tp);
      for (const [r, local] of ranks.entries()) descriptors[local] = group[r];
      continue;
    }
    for (const local of ranks) peers[local] = new Array(tp).fill(undefined);
    for (let r = 0; r < tp; r++) {
      for (let q = r + 1; q < tp; q++) {
        const [toQ, toR] = link(ranks[r]!, ranks[q]!);
        peers[ranks[r]!]![q] = toQ;
        peers[ranks[q]!]![r] = toR;
      }
    }
  }
  return { descriptors, peers };
}

/** The wiring of this host's devices of a replica with `layouts` (1 or 2, same tp * pp). */
export function wireAgentReplica(
  layouts: readonly ReplicaShape[],
  isHere: (local: number) => boolean,
  link: (a: number, b: number) => LinkEnds<MessagePort>,
  createTpGroup: (size: number) => unknown[],
): AgentReplicaWiring {
  const perReplica = layouts[0]!.tp * layouts[0]!.pp;
  const perLayout = layouts.map((layout) => ({
    pipeline: wireReplicaPipeline(layout.tp, layout.pp, link),
    ...wireTpGroups(layout, isHere, link, createTpGroup),
  }));
  const links: DeviceWorkerLinkPorts[] = Array.from({ length: perReplica }, () => ({}));
  const groups = Array.from({ length: perReplica }, (_, local) =>
    perLayout.map((layout) => layout.descriptors[local]),
  );
  for (let local = 0; local < perReplica; local++) {
    const first = perLayout[0]!;
    Object.assign(links[local]!, first.pipeline[local]);
    if (first.peers[local]) links[local]!.tpPeers = first.peers[local];
  }
  if (layouts.length === 1) return { links, groups };

  const mesh = Array.from({ length: perReplica }, () =>
    Array.from<MessagePort | undefined>({ length: perReplica }),
  );
  for (let i = 0; i < perReplica; i++) {
    for (let j = i + 1; j < perReplica; j++) [mesh[i]![j], mesh[j]![i]] = link(i, j);
  }
  for (let local = 0; local < perReplica; local++) {
    const ports = links[local]!;
    // Layout 0's pipeline ports are the same objects as previous / next: transferred once.
    ports.layouts = perLayout.map((layout) => layout.pipeline[local]!);
    ports.reshardPeers = mesh[local];
    if (perLayout.some((layout) => layout.peers[local]))
      ports.layoutTpPeers = perLayout.map((layout) => layout.peers[local]);
  }
  return { links, groups };
}
