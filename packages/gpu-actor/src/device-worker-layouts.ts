/**
 * Everything a device worker needs to run under either of its layouts (0 prefill, 1 decode),
 * opened once at load and kept: each layout's pipeline links with their activation inboxes,
 * each layout's TP group (created on first use, then reused, so collectives of a layout visited
 * twice stay in step), and the weight-piece mesh to the replica's other devices. A device that
 * never re-shards has layout 0 only and no mesh.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Checkpoint, TensorSlice } from '@seesaw/model';
import { acceptHello, connectAndHello, type Tensor } from '@seesaw/protocol';
import {
  DEFAULT_GROUP_TIMEOUT_MS,
  type DeviceWorkerData,
  type DeviceWorkerLinks,
} from './device-worker-data.ts';
import {
  ActivationInbox,
  LINK_HANDSHAKE_TIMEOUT_MS,
  type LinkEndpoint,
  linkEndpoint,
  type OpenedLinks,
  openLinks,
  openPeerGroup,
} from './device-worker-links.ts';
import { MeshRegions } from './mesh-regions.ts';
import type { ReshardIo } from './reshard-executor.ts';
import { SharedMemoryGroup } from './shared-memory-group.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';
import { WeightPieceReceipts } from './weight-piece-receipts.ts';
import { WeightSliceInbox } from './weight-slice-inbox.ts';

/** A peer that has not sent an awaited piece for this long has failed the re-shard. */
const PIECE_TIMEOUT_MS = 120_000;

export interface LayoutLinks {
  links: OpenedLinks;
  /** Activations from the previous stage of this layout; absent on its first stage. */
  inbox: ActivationInbox | undefined;
}

interface OpenOptions {
  deviceName: string;
  token: string;
  hiddenSize: number;
  log: (line: string) => void;
}

type Ports = DeviceWorkerLinks['seesawLinks'];

/** This device's index in the mesh: the one slot without a port. */
function ownIndex(peers: ReadonlyArray<unknown>, deviceName: string): number {
  const empty = peers.flatMap((port, i) => (port === undefined ? [i] : []));
  if (empty.length !== 1) {
    throw new Error(
      `${deviceName}: reshardPeers must leave exactly this device's own index empty (empty: ${empty.join(', ') || 'none'})`,
    );
  }
  return empty[0]!;
}

/**
 * Opens the mesh with the usual hello, the lower index connecting to the higher one, and hands
 * every link's weight pieces to one inbox and their receipts to `receipts`.
 */
async function openMesh(
  ports: ReadonlyArray<MessagePort | undefined>,
  self: number,
  inbox: WeightSliceInbox,
  receipts: WeightPieceReceipts,
  options: OpenOptions,
): Promise<Array<LinkEndpoint | undefined>> {
  const peers = ports.map((port, i) =>
    port ? linkEndpoint(port, `${options.deviceName} <-> device ${i} (weights)`) : undefined,
  );
  await Promise.all(
    peers.map((peer, i) => {
      if (!peer) return undefined;
      return i > self
        ? connectAndHello(peer, {
            role: 'device',
            name: options.deviceName,
            token: options.token,
            timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS,
          })
        : acceptHello(peer, {
            role: 'device',
            name: options.deviceName,
            expectedToken: options.token,
            allowedRoles: ['device'],
            log: options.log,
            timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS,
          });
    }),
  );
  peers.forEach((peer, i) => {
    if (!peer) return;
    inbox.attach(peer, i);
    receipts.attach(peer, i);
  });
  return peers;
}

export class DeviceLayouts {
  private readonly groups = new Map<number, TensorParallelGroup>();
  /** Links of the TP groups opened over peer ports (layoutTpPeers). */
  private readonly tpLinks: LinkEndpoint[] = [];
  private readonly regions: MeshRegions;

  private constructor(
    private readonly layouts: LayoutLinks[],
    private readonly peers: Array<LinkEndpoint | undefined>,
    private readonly weightSlices: WeightSliceInbox,
    private readonly receipts: WeightPieceReceipts,
    /** This device's index in its replica, when it has a mesh (re-sharding). */
    readonly localDevice: number | undefined,
    private readonly data: DeviceWorkerData,
    /** Per layout, the peer ports of a TP group spanning hosts (else its group is shared memory). */
    private readonly tpPeers: Ports['layoutTpPeers'],
  ) {
    this.regions = new MeshRegions(localDevice ?? 0);
  }

  static async open(ports: Ports, data: DeviceWorkerData, options: OpenOptions): Promise<DeviceLayouts> {
    const layoutPorts = ports.layouts?.length ? [...ports.layouts] : [{}];
    // Layout 0's links may come as the plain previous / next (a static cluster's only layout).
    if (!layoutPorts[0]?.previous && !layoutPorts[0]?.next) {
      layoutPorts[0] = { previous: ports.previous, next: ports.next };
    }
    const inbox = new WeightSliceInbox();
    const receipts = new WeightPieceReceipts();
    const self = ports.reshardPeers ? ownIndex(ports.reshardPeers, options.deviceName) : undefined;
    const [opened, peers] = await Promise.all([
      Promise.all(
        layoutPorts.map((layout) =>
          openLinks(layout ?? {}, { deviceName: options.deviceName, token: options.token, log: options.log }),
        ),
      ),
      ports.reshardPeers && self !== undefined
        ? openMesh(ports.reshardPeers, self, inbox, receipts, options)
        : [],
    ]);
    const layouts = opened.map((links) => ({
      links,
      inbox: links.previous ? new ActivationInbox(links.previous, options.hiddenSize) : undefined,
    }));
    return new DeviceLayouts(layouts, peers, inbox, receipts, self, data, ports.layoutTpPeers);
  }

  get numLayouts(): number {
    return this.layouts.length;
  }

  /** Layout `layout`'s pipeline links; throws for a layout this device got no links for. */
  links(layout: number): LayoutLinks {
    const links = this.layouts[layout];
    if (!links) {
      // A layout without any pipeline link (pp = 1) needs no ports: only layout 0 is implied.
      if (Number.isInteger(layout) && layout >= 0 && layout <= 1) return { links: {}, inbox: undefined };
      throw new Error(`no layout ${layout}: this device knows ${this.layouts.length}`);
    }
    return links;
  }

  /** Registers the group layout 0 was loaded with (it may span hosts), so a switch back reuses it. */
  setGroup(layout: number, group: TensorParallelGroup | undefined): void {
    if (group) this.groups.set(layout, group);
  }

  /** The TP group of `layout` for this rank; undefined at tp = 1. */
  group(layout: number, tp: number, tpRank: number): TensorParallelGroup | undefined {
    if (tp === 1) return undefined;
    const existing = this.groups.get(layout);
    if (existing) {
      if (existing.size !== tp || existing.rank !== tpRank)
        throw new Error(
          `layout ${layout}'s TP group is rank ${existing.rank} of ${existing.size}, the plan needs ${tpRank} of ${tp}`,
        );
      return existing;
    }
    const peerPorts = this.tpPeers?.[layout];
    if (peerPorts) {
      // The group spans hosts: all-reduce over the (agent-relayed) links, closed with the others.
      const { group, endpoints } = openPeerGroup(tp, tpRank, peerPorts, this.data.deviceName);
      this.tpLinks.push(...endpoints);
      this.groups.set(layout, group);
      return group;
    }
    const descriptor = this.data.layoutGroups?.[layout] ?? (layout === 0 ? this.data.group : undefined);
    if (!descriptor)
      throw new Error(`layout ${layout} has TP ${tp}, but workerData has no group descriptor for it`);
    if (descriptor.size !== tp || descriptor.rank !== tpRank) {
      throw new Error(
        `layout ${layout}'s group descriptor is rank ${descriptor.rank} of ${descriptor.size}, the plan needs ${tpRank} of ${tp}`,
      );
    }
    const group = new SharedMemoryGroup(descriptor, this.data.groupTimeoutMs ?? DEFAULT_GROUP_TIMEOUT_MS);
    this.groups.set(layout, group);
    return group;
  }

  /**
   * Piece transport of re-shard `reshardId` over the mesh. A piece in shared memory (the weight
   * arena's) crosses as a descriptor of its region, announced on the link once: a peer thread
   * reads it in place (a peer on another host gets the bytes from the agent's relay, which reads
   * them there), and the piece's receipt says when the bytes may change again.
   */
  reshardIo(reshardId: number, checkpoint: Checkpoint): ReshardIo {
    this.weightSlices.discardBefore(reshardId);
    const peer = (device: number): LinkEndpoint => {
      const link = this.peers[device];
      if (!link) throw new Error(`no weight link to device ${device} (this is device ${this.localDevice})`);
      return link;
    };
    return {
      checkpoint,
      send: (to: number, slice: TensorSlice, bytes: Uint8Array) => {
        const link = peer(to);
        const isShared = bytes.buffer instanceof SharedArrayBuffer;
        if (isShared) this.regions.share(link, bytes.buffer);
        const receipt = isShared ? this.receipts.expect(reshardId, to, slice, PIECE_TIMEOUT_MS) : undefined;
        const tensor: Tensor = { dtype: 'u8', shape: [bytes.byteLength], data: bytes };
        const { name, axis, start, end } = slice;
        link.post({ tag: 'weightSlice', reshardId, name, axis, start, end }, [tensor]);
        return receipt;
      },
      receive: (from: number, slice: TensorSlice) => {
        peer(from);
        return this.weightSlices.take(reshardId, from, slice, PIECE_TIMEOUT_MS);
      },
      confirm: (from: number, slice: TensorSlice) => {
        const { name, axis, start, end } = slice;
        peer(from).post({ tag: 'weightSliceTaken', reshardId, name, axis, start, end });
      },
    };
  }

  close(reason: string): void {
    for (const { links } of this.layouts) {
      links.previous?.close(reason);
      links.next?.close(reason);
    }
    for (const peer of this.peers) peer?.close(reason);
    for (const link of this.tpLinks) link.close(reason);
  }
}
