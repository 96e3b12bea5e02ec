/**
 * Point-to-point bandwidth of the transports for 1 MiB and 16 MiB f32 tensors, against
 * memcpy and a raw loopback TCP socket. Run: pnpm bench:transport
 *
 * Every transport is measured the same way: the sender keeps WINDOW messages in flight,
 * the receiver (another thread, except in-process) acks each one; GB/s = payload bytes /
 * wall time. Receivers get views and do not read the payload (like memcpy's destination,
 * the bytes are then where the receiver can read them).
 */

import { once } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import type { Endpoint } from '../src/endpoint.ts';
import { createInProcessPair } from '../src/in-process.ts';
import { SharedRegion } from '../src/shared-region.ts';
import type { Tensor } from '../src/tensor.ts';
import { connectWebSocket } from '../src/websocket.ts';
import { spawnWorkerEndpoint } from '../src/worker-port.ts';

const WINDOW = 4;
const SINK = new URL('./sink-worker.ts', import.meta.url);
const SIZES = [1 << 20, 16 << 20];
/** Payload bytes moved per measurement (after one warm-up pass of a quarter of it). */
const BYTES_PER_RUN = 512 << 20;

const chunkMessage = {
  tag: 'allReduceChunk',
  opId: 0,
  stepId: 0,
  round: 0,
  chunkIndex: 0,
  numChunks: 1,
  fromRank: 0,
} as const;

function f32Tensor(bytes: number): Tensor {
  const data = new Float32Array(bytes / 4);
  for (let i = 0; i < data.length; i += 1024) data[i] = i;
  return { dtype: 'f32', shape: [data.length], data };
}

function gbps(bytes: number, ms: number): number {
  return bytes / ms / 1e6;
}

/** Sends `count` messages through `send`, keeping WINDOW unacked; resolves when all acked. */
function pipelined(
  count: number,
  send: (i: number) => void,
  onAck: (ack: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0;
    let acked = 0;
    onAck(() => {
      acked++;
      if (acked === count) resolve();
      else if (sent < count) send(sent++);
    });
    while (sent < Math.min(WINDOW, count)) send(sent++);
  });
}

async function measure(bytesPerMessage: number, run: (count: number) => Promise<void>): Promise<number> {
  const count = Math.max(WINDOW * 2, Math.round(BYTES_PER_RUN / bytesPerMessage));
  await run(Math.max(WINDOW, count >> 2));
  const start = performance.now();
  await run(count);
  return gbps(count * bytesPerMessage, performance.now() - start);
}

function memcpy(bytes: number, useSet: boolean): Promise<number> {
  const source = Buffer.alloc(bytes, 7);
  const target = Buffer.alloc(bytes);
  return measure(bytes, async (count) => {
    for (let i = 0; i < count; i++) {
      if (useSet) target.set(source);
      else source.copy(target);
    }
  });
}

/** An endpoint's acks, as a callback registration for pipelined(). */
function acksOf(endpoint: Endpoint): (ack: () => void) => void {
  let current: (() => void) | undefined;
  endpoint.onMessage(() => current?.());
  return (ack) => {
    current = ack;
  };
}

async function inProcess(bytes: number): Promise<number> {
  const [a, b] = createInProcessPair({ log: () => {} });
  b.onMessage(() => b.post({ tag: 'heartbeat', seq: 0, sentAtMs: 0 }));
  const tensor = f32Tensor(bytes);
  const onAck = acksOf(a);
  const result = await measure(bytes, (count) =>
    pipelined(count, () => a.post(chunkMessage, [tensor]), onAck),
  );
  a.close();
  return result;
}

async function startSink(mode: 'port' | 'ws' | 'tcp', bytes: number) {
  const { worker, endpoint } = spawnWorkerEndpoint(SINK, {
    workerData: { mode, messageBytes: bytes },
    log: () => {},
  });
  const stop = async () => {
    endpoint.close();
    await worker.terminate();
  };
  if (mode === 'port') return { worker, endpoint, port: 0, stop };
  const [{ port }] = (await once(worker as Worker, 'message')) as [{ port: number }];
  return { worker, endpoint, port, stop };
}

async function workerTransfer(bytes: number): Promise<number> {
  const sink = await startSink('port', bytes);
  const tensor = f32Tensor(bytes);
  const onAck = acksOf(sink.endpoint);
  const result = await measure(bytes, (count) =>
    pipelined(count, () => sink.endpoint.post(chunkMessage, [tensor]), onAck),
  );
  await sink.stop();
  return result;
}

/** isCopyIn: the producer's tensor is copied into the region each time (else already there). */
async function workerShared(bytes: number, isCopyIn: boolean): Promise<number> {
  const sink = await startSink('port', bytes);
  const region = SharedRegion.create(1, WINDOW * bytes + 4096);
  sink.endpoint.shareRegion(region);
  const slots = Array.from({ length: WINDOW }, () => region.allocateTensor('f32', [bytes / 4])!);
  const source = f32Tensor(bytes);
  const onAck = acksOf(sink.endpoint);
  const result = await measure(bytes, (count) =>
    pipelined(
      count,
      (i) => {
        const slot = slots[i % WINDOW]!;
        if (isCopyIn) slot.data.set(source.data);
        sink.endpoint.post(chunkMessage, [slot]);
      },
      onAck,
    ),
  );
  await sink.stop();
  return result;
}

async function webSocket(bytes: number, isMasked: boolean): Promise<number> {
  const sink = await startSink('ws', bytes);
  const client = await connectWebSocket(`ws://127.0.0.1:${sink.port}`, { log: () => {}, isMasked });
  const tensor = f32Tensor(bytes);
  const onAck = acksOf(client);
  const result = await measure(bytes, (count) =>
    pipelined(count, () => client.post(chunkMessage, [tensor]), onAck),
  );
  client.close();
  await sink.stop();
  return result;
}

async function rawTcp(bytes: number): Promise<number> {
  const sink = await startSink('tcp', bytes);
  const socket = connect(sink.port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const payload = Buffer.alloc(bytes, 7);
  let current: (() => void) | undefined;
  socket.on('data', (chunk) => {
    for (let i = 0; i < chunk.byteLength; i++) current?.();
  });
  const onAck = (ack: () => void) => {
    current = ack;
  };
  const result = await measure(bytes, (count) => pipelined(count, () => socket.write(payload), onAck));
  socket.destroy();
  await sink.stop();
  return result;
}

const cases: Array<[string, (bytes: number) => Promise<number>]> = [
  ['memcpy Buffer.copy', (b) => memcpy(b, false)],
  ['memcpy TypedArray.set', (b) => memcpy(b, true)],
  ['in-process (encode + decode)', inProcess],
  ['worker_threads, frame transferred', workerTransfer],
  ['worker_threads, SAB copy-in + descriptor', (b) => workerShared(b, true)],
  ['worker_threads, SAB descriptor only', (b) => workerShared(b, false)],
  ['WebSocket loopback (ws, zero mask: default)', (b) => webSocket(b, false)],
  ['WebSocket loopback (ws, random mask, JS)', (b) => webSocket(b, true)],
  ['raw TCP loopback (net)', rawTcp],
];

const started = performance.now();
console.log(
  `transport bench: ${WINDOW} in flight, ${BYTES_PER_RUN >> 20} MiB per measurement, GB/s = 1e9 B/s`,
);
console.log(`| transport | ${SIZES.map((s) => `${s >> 20} MiB`).join(' | ')} |`);
console.log(`|---|${SIZES.map(() => '---:').join('|')}|`);
for (const [name, run] of cases) {
  const figures: string[] = [];
  for (const size of SIZES) figures.push((await run(size)).toFixed(2));
  console.log(`| ${name} | ${figures.join(' | ')} |`);
}
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
