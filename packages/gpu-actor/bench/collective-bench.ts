/**
 * Tensor-parallel all-reduce bandwidth, 2 ranks: shared memory between two worker threads
 * (inside a host) and the message-endpoint mesh over a loopback WebSocket (across hosts),
 * against a plain memcpy of the same bytes. Figures are buffer bytes per second per rank.
 * Run: pnpm bench:collectives
 */
import {
  connectWebSocket,
  type DeviceToDevice,
  type Endpoint,
  INBOUND_TAGS,
  listenWebSocket,
  startWorker,
} from '@seesaw/protocol';
import { EndpointGroup } from '../src/endpoint-group.ts';
import { createSharedMemoryGroup } from '../src/shared-memory-group.ts';
import type { CollectiveWorkerInput, CollectiveWorkerOutput } from '../test/collective-test-worker.ts';

const WORKER_ENTRY = new URL('../test/collective-test-worker.ts', import.meta.url);
const SIZES = [16 * 1024, 1024 * 1024, 16 * 1024 * 1024];
type Link = Endpoint<DeviceToDevice, DeviceToDevice>;

function gbPerSecond(bytes: number, micros: number): string {
  return (bytes / micros / 1000).toFixed(2);
}

function memcpyMicros(bytes: number): number {
  const src = new Float32Array(bytes / 4).fill(1);
  const dst = new Float32Array(bytes / 4);
  const reps = Math.max(3, Math.floor((256 * 1024 * 1024) / bytes));
  const start = performance.now();
  for (let i = 0; i < reps; i++) dst.set(src);
  return ((performance.now() - start) * 1000) / reps;
}

async function sharedMemoryMicros(bytes: number): Promise<number> {
  const length = bytes / 4;
  const numOps = Math.max(3, Math.floor((128 * 1024 * 1024) / bytes));
  const descriptors = createSharedMemoryGroup(2, Math.min(length, 1024 * 1024));
  const outputs = await Promise.all(
    descriptors.map((descriptor) => {
      const payload: CollectiveWorkerInput = { descriptor, ops: [], timed: { length, numOps } };
      const worker = startWorker(WORKER_ENTRY, { workerData: { payload } });
      return new Promise<CollectiveWorkerOutput>((resolve, reject) => {
        worker.once('message', (output) => {
          resolve(output);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  return Math.max(...outputs.map((output) => output.microsPerTimedOp ?? Number.NaN));
}

async function webSocketMicros(bytes: number): Promise<number> {
  let accepted: (link: Link) => void = () => {};
  const serverSide = new Promise<Link>((resolve) => {
    accepted = resolve;
  });
  const listener = await listenWebSocket({
    accept: INBOUND_TAGS.deviceToDevice,
    onConnection: (endpoint) => accepted(endpoint as unknown as Link),
    isWithoutAuthentication: true,
  });
  const client = (await connectWebSocket<DeviceToDevice, DeviceToDevice>(listener.url, {
    accept: INBOUND_TAGS.deviceToDevice,
  })) as unknown as Link;
  const server = await serverSide;
  const groups = [new EndpointGroup(0, [undefined, client]), new EndpointGroup(1, [server, undefined])];
  const buffers = [new Float32Array(bytes / 4).fill(0.5), new Float32Array(bytes / 4).fill(0.25)];
  const numOps = Math.max(3, Math.floor((64 * 1024 * 1024) / bytes));
  const start = performance.now();
  for (let i = 0; i < numOps; i++) {
    await Promise.all(groups.map((group, rank) => group.allReduceSum(buffers[rank])));
  }
  const micros = ((performance.now() - start) * 1000) / numOps;
  client.close();
  await listener.close();
  return micros;
}

console.log(
  'all-reduce, 2 ranks: buffer GB/s per rank (higher is better); memcpy of the same bytes for scale',
);
console.log('bytes      memcpy   shared-memory (2 workers)   WebSocket loopback (both ranks in this thread)');
for (const bytes of SIZES) {
  const copy = memcpyMicros(bytes);
  const shared = await sharedMemoryMicros(bytes);
  const socket = await webSocketMicros(bytes);
  console.log(
    `${String(bytes).padEnd(10)} ${gbPerSecond(bytes, copy).padStart(6)}   ` +
      `${gbPerSecond(bytes, shared).padStart(6)} (${shared.toFixed(0)} us/op)          ` +
      `${gbPerSecond(bytes, socket).padStart(6)} (${socket.toFixed(0)} us/op)`,
  );
}
