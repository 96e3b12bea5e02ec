/**
 * Forwards the parts of a stored KV box that devices on other hosts own (KvForwardingTable) to
 * those hosts' kv-stores, as plain kvPuts on a link to each peer store (this store says hello
 * there as a device). The original put or copy-out is answered only once every peer confirmed,
 * so a write-back that completed before a switch is on every host that prefetches it after.
 *
 * The parts are read back from this store's slots (HostKvStore.get), which serves the frames
 * path (kvPut) and the shared-memory path (kvCopyOut) alike.
 */

import type { MessagePort } from 'node:worker_threads';
import {
  connectAndHello,
  type DeviceToKvStore,
  INBOUND_TAGS,
  type KvSliceAddress,
  type KvStoreToDevice,
  type Tensor,
  WorkerPortEndpoint,
} from '@seesaw/protocol';
import type { KvSliceBox } from './host-kv-layout.ts';
import type { HostKvStore } from './host-kv-store.ts';
import type { KvForwardingTable } from './kv-forwarding-table.ts';

/** Ends the hello name of a store forwarding to another (so that one can count what it gets). */
export const FORWARDING_STORE_SUFFIX = ' (forwarding)';

/** A peer store may still be starting (tsx compiles its worker). */
const PEER_STORE_HANDSHAKE_TIMEOUT_MS = 60_000;

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * This store's link to another host's store: puts numbered on the link, each settled by its
 * kvPutDone / kvError; a closed link fails those still waiting. Shared by every forwarder.
 */
export class PeerStore {
  private nextRequestId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private closedReason: string | undefined;

  constructor(
    private readonly link: WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>,
    readonly host: string,
  ) {
    link.onMessage((message) => {
      if (message.tag !== 'kvPutDone' && message.tag !== 'kvError') return;
      const waiter = this.waiters.get(message.requestId);
      if (!waiter) return;
      this.waiters.delete(message.requestId);
      if (message.tag === 'kvPutDone') waiter.resolve();
      else waiter.reject(new Error(`kv-store of ${host}: ${message.message}`));
    });
    link.onClose((reason) => {
      this.closedReason = reason;
      for (const waiter of this.waiters.values())
        waiter.reject(new Error(`link to the kv-store of ${host} closed: ${reason}`));
      this.waiters.clear();
    });
  }

  /** Stores `part` there; resolves once that store confirmed it. */
  put(part: KvSliceBox, tensor: Tensor): Promise<void> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new Error(`link to the kv-store of ${this.host} closed: ${this.closedReason}`));
    }
    const requestId = this.nextRequestId++;
    const done = new Promise<void>((resolve, reject) => this.waiters.set(requestId, { resolve, reject }));
    const { seqId, layers, heads, tokens, slotIds } = part;
    const put: DeviceToKvStore = { tag: 'kvPut', requestId, seqId, layers, heads, tokens };
    if (slotIds !== undefined) put.slotIds = [...slotIds];
    this.link.post(put, [tensor]);
    return done;
  }

  close(reason: string): void {
    this.link.close(reason);
  }
}

/** Opens a link to the store of `host` over `port` and says hello there as a device. */
export async function openPeerStore(
  port: MessagePort,
  options: { name: string; token: string; host: string },
): Promise<PeerStore> {
  const link = new WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>(
    port,
    `${options.name} -> kv-store of ${options.host}`,
    { accept: INBOUND_TAGS.kvStoreToDevice },
  );
  await connectAndHello(link, {
    role: 'device',
    name: `${options.name}${FORWARDING_STORE_SUFFIX}`,
    token: options.token,
    timeoutMs: PEER_STORE_HANDSHAKE_TIMEOUT_MS,
  });
  return new PeerStore(link, options.host);
}

/** Running totals: parts and bytes this store sent on to peer stores. */
export interface KvForwardCounters {
  numForwards: number;
  numBytesForwarded: number;
}

/** The forwards of one device link. */
export class KvPutForwarder {
  readonly counters: KvForwardCounters = { numForwards: 0, numBytesForwarded: 0 };

  constructor(
    private readonly store: HostKvStore,
    private readonly table: KvForwardingTable,
    /** The store of each host (as named in the table); may still be opening. */
    private readonly peers: ReadonlyMap<string, Promise<PeerStore>>,
  ) {}

  /**
   * Sends the parts of `box` (already stored here) that other hosts need; resolves once every
   * peer store confirmed them, rejects naming the host when one refused or its link closed.
   * Undefined when nothing has to go anywhere.
   */
  forward(box: KvSliceAddress): Promise<void> | undefined {
    const forwards = this.table.forwardsFor(box.layers, box.heads);
    if (forwards.length === 0) return undefined;
    return Promise.all(
      forwards.map(async ({ host, layers, heads }) => {
        const peer = await this.peers.get(host);
        if (!peer) throw new Error(`no link to the kv-store of ${host}`);
        const part: KvSliceBox = {
          seqId: box.seqId,
          layers,
          heads,
          tokens: box.tokens,
          slotIds: box.slotIds,
        };
        const read = this.store.get(part);
        if (!read.ok) throw new Error(`forwarding to ${host}: ${read.reason}`);
        this.counters.numForwards++;
        this.counters.numBytesForwarded += read.tensor.data.byteLength;
        await peer.put(part, read.tensor);
      }),
    ).then(() => {});
  }
}
