/**
 * Receiving end of the transport bench, in its own thread (as a remote actor would be).
 * mode 'port': acks every message on the worker link with a heartbeat.
 * mode 'ws': WebSocket server on loopback, acks every message with a heartbeat.
 * mode 'tcp': raw net server, writes one byte back per `messageBytes` received.
 * The ws/tcp port goes to the parent as { port } on the worker's own parentPort.
 */

import { createServer } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import type { Endpoint } from '../src/endpoint.ts';
import { listenWebSocket } from '../src/websocket.ts';
import { parentWorkerEndpoint } from '../src/worker-port.ts';

const { mode, messageBytes } = workerData as { mode: 'port' | 'ws' | 'tcp'; messageBytes: number };

function ackEverything(endpoint: Endpoint): void {
  let seq = 0;
  endpoint.onMessage(() => endpoint.post({ tag: 'heartbeat', seq: seq++, sentAtMs: 0 }));
}

const link = parentWorkerEndpoint({ log: () => {} });
if (mode === 'port') {
  ackEverything(link);
} else if (mode === 'ws') {
  const listener = await listenWebSocket({
    port: 0,
    log: () => {},
    onConnection: ackEverything,
    isWithoutAuthentication: true,
  });
  link.onClose(() => void listener.close());
  parentPort!.postMessage({ port: listener.port });
} else {
  const server = createServer((socket) => {
    let pending = 0;
    socket.on('data', (chunk) => {
      pending += chunk.byteLength;
      while (pending >= messageBytes) {
        pending -= messageBytes;
        socket.write(Buffer.of(1));
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    parentPort!.postMessage({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  link.onClose(() => server.close());
}
