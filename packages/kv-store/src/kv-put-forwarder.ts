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
  WorkerPortEndpoint,
} from '@seesaw/protocol';
import type { HostKvStore } from './host-kv-store.ts';
import type { KvForwardingTable } from './kv-forwarding-table.ts';

export type PeerStoreLink = WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>;

/** A peer store may still be starting (tsx compiles its worker). */
const PEER_STORE_HANDSHAKE_TIMEOUT_MS = 60_000;

/** Opens a link to another host's store over `port` and says hello there as a device. */
export async function openPeerStoreLink(
  port: MessagePort,
  options: { name: string; token: string },
): Promise<PeerStoreLink> {
  const link = new WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>(
    port,
    `${options.name} -> peer store`,
    {
      accept: INBOUND_TAGS.kvStoreToDevice,
    },
  );
  await connectAndHello(link, {
    role: 'device',
    name: options.name,
    token: options.token,
    timeoutMs: PEER_STORE_HANDSHAKE_TIMEOUT_MS,
  });
  return link;
}

/** Running totals: puts and bytes this store sent on to peer stores. */
export interface KvForwardCounters {
  numForwards: number;
  numBytesForwarded: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class KvPutForwarder {
  readonly counters: KvForwardCounters = { numForwards: 0, numBytesForwarded: 0 };
  private nextRequestId = 1;
  /** Forwards awaiting their peer's answer, per peer link, by request id. */
  private readonly pending = new Map<PeerStoreLink, Map<number, Waiter>>();

  constructor(
    private readonly store: HostKvStore,
    private readonly table: KvForwardingTable,
    /** The link to each host's store, by host (as in the table); may still be opening. */
    private readonly peerLinks: ReadonlyMap<string, Promise<PeerStoreLink>>,
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
        const link = await this.peerLinks.get(host);
        if (!link) throw new Error(`no link to the kv-store of ${host}`);
        const waiters = this.waitersOf(link, host);
        const part = { seqId: box.seqId, layers, heads, tokens: box.tokens, slotIds: box.slotIds };
        const read = this.store.get(part);
        if (!read.ok) throw new Error(`forwarding to ${host}: ${read.reason}`);
        const requestId = this.nextRequestId++;
        const done = new Promise<void>((resolve, reject) => waiters.set(requestId, { resolve, reject }));
        const put: DeviceToKvStore = { tag: 'kvPut', requestId, ...part };
        if (box.slotIds === undefined) delete (put as { slotIds?: unknown }).slotIds;
        link.post(put, [read.tensor]);
        this.counters.numForwards++;
        this.counters.numBytesForwarded += read.tensor.data.byteLength;
        await done.catch((error: Error) => {
          throw new Error(`kv-store of ${host}: ${error.message}`);
        });
      }),
    ).then(() => {});
  }

  /** Answers on a peer link settle the forwards waiting for them; a closed link fails its own. */
  private waitersOf(link: PeerStoreLink, host: string): Map<number, Waiter> {
    let waiters = this.pending.get(link);
    if (waiters) return waiters;
    const mine = new Map<number, Waiter>();
    this.pending.set(link, mine);
    link.onMessage((message) => {
      if (message.tag !== 'kvPutDone' && message.tag !== 'kvError') return;
      const waiter = mine.get(message.requestId);
      if (!waiter) return;
      mine.delete(message.requestId);
      if (message.tag === 'kvPutDone') waiter.resolve();
      else waiter.reject(new Error(message.message));
    });
    link.onClose((reason) => {
      for (const waiter of mine.values())
        waiter.reject(new Error(`link to ${host} closed: ${String(reason)}`));
      mine.clear();
    });
    waiters = mine;
    return waiters;
  }
}
