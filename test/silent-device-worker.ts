// Test worker: a device that completes the hello (its clock probes included) and loadShard, then
// never answers again (no heartbeats, no stepDone), like a hung device.
import { parentPort, workerData } from 'node:worker_threads';
import { acceptHello, INBOUND_TAGS, parentWorkerEndpoint } from '@seesaw/protocol';

parentPort?.once('message', () => parentPort?.unref());
const endpoint = parentWorkerEndpoint({ accept: INBOUND_TAGS.coordinatorToDevice });
await acceptHello(endpoint, {
  role: 'device',
  name: 'silent device',
  expectedToken: (workerData as { token: string }).token,
  log: () => {},
});
endpoint.onMessage((message) => {
  if (message.tag === 'clockProbe') {
    const { seq, sentAtMs } = message;
    endpoint.post({ tag: 'clockReply', seq, sentAtMs, deviceMs: performance.timeOrigin + performance.now() });
  }
  if (message.tag === 'loadShard')
    endpoint.post({ tag: 'ready', numKvBlocks: 8, weightBytes: 0, kvCacheBytes: 0 });
});
