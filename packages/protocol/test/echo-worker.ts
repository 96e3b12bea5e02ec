/**
 * Worker for the worker_threads tests and bench: accepts the parent's hello (token from
 * workerData), then echoes every message with its tensors. Tensors in a shared region go
 * back as region descriptors, others as transferred frame bytes.
 * workerData.mode 'ack' answers each message with a heartbeat instead (bandwidth bench).
 */

import { workerData } from 'node:worker_threads';
import { acceptHello } from '../src/handshake.ts';
import { parentWorkerEndpoint } from '../src/worker-port.ts';

const { token, mode } = workerData as { token: string; mode?: 'echo' | 'ack' };
const endpoint = parentWorkerEndpoint({ name: 'echo-worker parent', log: () => {} });

acceptHello(endpoint, { role: 'device', name: 'echo-worker', expectedToken: token, log: () => {} }).then(
  () => {
    let seq = 0;
    endpoint.onMessage((message, tensors) => {
      if (mode === 'ack') endpoint.post({ tag: 'heartbeat', seq: seq++, sentAtMs: 0 });
      else endpoint.post(message, tensors);
    });
  },
  () => {
    // Refused: acceptHello has closed the port; the thread ends.
  },
);
