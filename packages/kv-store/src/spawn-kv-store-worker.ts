/**
 * Starts a kv-store in its own worker thread and hands out links to it: the parent's own
 * endpoint, fresh in-process endpoints (openLink) or the far end of a channel for another
 * thread (sendLinkPort, e.g. a device worker's port).
 */

import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import {
  type FrameEndpointOptions,
  type Message,
  spawnWorkerEndpoint,
  WorkerPortEndpoint,
} from '@seesaw/protocol';
import type { KvForwardingSpec } from './kv-forwarding-table.ts';
import type {
  KvLinkAnnouncement,
  KvPeerStoreAnnouncement,
  KvStoreWorkerData,
} from './kv-store-worker-data.ts';

const KV_STORE_WORKER = new URL('./kv-store-worker.ts', import.meta.url);

export interface KvStoreWorker {
  worker: Worker;
  /** The parent's link (say hello on it first, as coordinator or device). */
  endpoint: WorkerPortEndpoint<Message, Message>;
  /** Resolves with the exit code when the thread ends. */
  exited: Promise<number>;
  /** A new link from this thread to the store. */
  openLink(name?: string, options?: FrameEndpointOptions): WorkerPortEndpoint<Message, Message>;
  /**
   * Gives the store one end of a channel; the other end goes to whoever will talk to it. With
   * `forwarding`, a device of a Seesaw replica spanning hosts: its puts go on to other hosts.
   */
  sendLinkPort(port: MessagePort, forwarding?: KvForwardingSpec): void;
  /** Gives the store its end of a link to the store of `host` (forwards go there). */
  sendPeerStorePort(port: MessagePort, host: string): void;
}

export function spawnKvStoreWorker(
  data: KvStoreWorkerData,
  options: FrameEndpointOptions = {},
): KvStoreWorker {
  const { worker, endpoint } = spawnWorkerEndpoint<Message, Message>(KV_STORE_WORKER, {
    ...options,
    workerData: { ...data },
    name: `kv-store worker ${data.name}`,
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const sendLinkPort = (port: MessagePort, forwarding?: KvForwardingSpec) => {
    const announcement: KvLinkAnnouncement = { seesawKvLink: port, ...(forwarding ? { forwarding } : {}) };
    worker.postMessage(announcement, [port]);
  };
  let numLinks = 0;
  return {
    worker,
    endpoint,
    exited,
    sendLinkPort,
    sendPeerStorePort(port, host) {
      worker.postMessage({ seesawKvPeerStore: port, host } satisfies KvPeerStoreAnnouncement, [port]);
    },
    openLink(name, linkOptions = options) {
      const { port1, port2 } = new MessageChannel();
      sendLinkPort(port2);
      return new WorkerPortEndpoint<Message, Message>(
        port1,
        name ?? `kv-store link ${++numLinks}`,
        linkOptions,
      );
    },
  };
}
