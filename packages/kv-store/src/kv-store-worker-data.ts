/**
 * What a kv-store worker thread is started with, and the control object that hands it more
 * links: the parent posts `{ seesawKvLink: port }` on the Worker's own port, and the worker
 * serves that MessagePort (hello first, like every link).
 */

import type { MessagePort } from 'node:worker_threads';
import type { HostKvLayout } from './host-kv-layout.ts';

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
}

export function isKvLinkAnnouncement(value: unknown): value is KvLinkAnnouncement {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { seesawKvLink?: { postMessage?: unknown } }).seesawKvLink?.postMessage === 'function'
  );
}
