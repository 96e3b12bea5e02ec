/**
 * What a kv-store worker thread is started with, and the control object that hands it more
 * links: the parent posts `{ seesawKvLink: port }` on the Worker's own port, and the worker
 * serves that MessagePort (hello first, like every link).
 */

import type { MessagePort } from 'node:worker_threads';
import type { HostKvLayout } from './host-kv-layout.ts';
import type { KvForwardingSpec } from './kv-forwarding-table.ts';

export interface KvStoreWorkerData {
  name: string;
  token: string;
  layout: HostKvLayout;
  capacityBytes: number;
  /** Host slots in SharedArrayBuffers (default true). */
  isShared?: boolean;
  /** Print log lines to stderr (default true). */
  isLogged?: boolean;
}

export interface KvLinkAnnouncement {
  seesawKvLink: MessagePort;
  /**
   * The link of a device of a Seesaw replica spanning hosts: what its puts store is forwarded
   * to the stores of the other hosts (over links announced by KvPeerStoreAnnouncement).
   */
  forwarding?: KvForwardingSpec;
}

/** A link on which this store talks to another host's store (as a device), for forwards. */
export interface KvPeerStoreAnnouncement {
  seesawKvPeerStore: MessagePort;
  /** That store's host, as named in KvForwardingSpec.deviceHosts. */
  host: string;
}

export function isKvPeerStoreAnnouncement(value: unknown): value is KvPeerStoreAnnouncement {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { host?: unknown }).host === 'string' &&
    typeof (value as { seesawKvPeerStore?: { postMessage?: unknown } }).seesawKvPeerStore?.postMessage ===
      'function'
  );
}

export function isKvLinkAnnouncement(value: unknown): value is KvLinkAnnouncement {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { seesawKvLink?: { postMessage?: unknown } }).seesawKvLink?.postMessage === 'function'
  );
}
