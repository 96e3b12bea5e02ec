/**
 * Entry of a kv-store worker thread (start it with spawnKvStoreWorker). The link to the
 * parent is served first; further links arrive as MessagePorts on the Worker's own port.
 * The store lives as long as the parent link: when it closes (or the coordinator orders a
 * shutdown) every link is closed and the thread ends.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { parentWorkerEndpoint, WorkerPortEndpoint } from '@seesaw/protocol';
import { HostKvStore } from './host-kv-store.ts';
import { KV_STORE_INBOUND_TAGS, KvStoreActor, type KvStoreLink } from './kv-store-actor.ts';
import { isKvLinkAnnouncement, type KvStoreWorkerData } from './kv-store-worker-data.ts';

const data = workerData as KvStoreWorkerData;
const log = data.isLogged === false ? () => {} : (line: string) => console.warn(`${data.name}: ${line}`);
const store = new HostKvStore({
  layout: data.layout,
  capacityBytes: data.capacityBytes,
  // Slots in shared memory by default: a device of this host shares its cache with this thread.
  isShared: data.isShared ?? true,
});
const actor = new KvStoreActor(store, { name: data.name, token: data.token, log, onShutdown: stop });
const parent = parentWorkerEndpoint({ accept: KV_STORE_INBOUND_TAGS, name: 'parent', log });
let numLinks = 0;

function serve(link: KvStoreLink): void {
  // A refused hello is logged and its link closed by acceptHello; the store keeps serving.
  actor.serve(link).catch(() => {});
}

function onControl(value: unknown): void {
  if (!isKvLinkAnnouncement(value)) {
    log('ignored a control message that is not a link announcement');
    return;
  }
  const name = `link ${++numLinks}`;
  serve(new WorkerPortEndpoint(value.seesawKvLink, name, { accept: KV_STORE_INBOUND_TAGS, log }));
}

function stop(): void {
  parentPort?.off('message', onControl);
  actor.close();
  parent.close('kv-store stopped');
}

parentPort?.on('message', onControl);
// Only the links keep the thread alive; the control port alone does not.
parentPort?.unref();
parent.onClose(() => stop());
serve(parent);
