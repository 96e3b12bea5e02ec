/**
 * What the kv-store actor serves: a link over any Endpoint, the tags it accepts before the
 * peer's role is known, and what a link may come with: a peer that shares memory with this
 * thread (kvCacheShare), or a forwarder for a Seesaw replica spanning hosts (setForwarder).
 */

import { type Endpoint, INBOUND_TAGS, type KvSliceAddress, type Message } from '@seesaw/protocol';

/** Any link the actor serves; the peer's role (from its hello) decides what it may send. */
export type KvStoreLink = Endpoint<Message, Message>;

/** Tags a kv-store accepts before it knows the peer's role: coordinator and device requests. */
export const KV_STORE_INBOUND_TAGS: ReadonlySet<string> = new Set([
  ...INBOUND_TAGS.coordinatorToKvStore,
  ...INBOUND_TAGS.deviceToKvStore,
]);

/** A link whose peer can share memory with us (a WorkerPortEndpoint's region registry). */
export interface RegionHolder {
  peerRegion(id: number): { buffer: SharedArrayBuffer } | undefined;
}

export function holdsRegions(endpoint: unknown): endpoint is RegionHolder {
  return typeof (endpoint as Partial<RegionHolder>).peerRegion === 'function';
}

/** Sends on what a put stored to other hosts' stores (KvPutForwarder); undefined: nothing to send. */
export interface KvStoreForwarder {
  forward(box: KvSliceAddress): Promise<void> | undefined;
}
