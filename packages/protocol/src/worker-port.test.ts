import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../test/random.ts';
import { randomTensor } from '../test/sample-messages.ts';
import {
  expectEveryMessageRoundTrips,
  expectMalformedFramesRejected,
  expectSameTensors,
  nextMessages,
} from '../test/transport-checks.ts';
import { connectAndHello, HandshakeError } from './handshake.ts';
import type { Message } from './messages/index.ts';
import { SharedRegion } from './shared-region.ts';
import type { Tensor } from './tensor.ts';
import { spawnWorkerEndpoint, WorkerPortEndpoint } from './worker-port.ts';

const ECHO_WORKER = new URL('../test/echo-worker.ts', import.meta.url);
const token = 'worker-token';
const started: Array<{ endpoint: WorkerPortEndpoint; exited: Promise<number> }> = [];

function startEcho(): WorkerPortEndpoint {
  const { worker, endpoint } = spawnWorkerEndpoint(ECHO_WORKER, {
    workerData: { token },
    log: () => {},
  });
  started.push({ endpoint, exited: new Promise((resolve) => worker.once('exit', resolve)) });
  return endpoint;
}

async function startHelloed(): Promise<WorkerPortEndpoint> {
  const endpoint = startEcho();
  await connectAndHello(endpoint, { role: 'coordinator', name: 'test', token, timeoutMs: 30_000 });
  return endpoint;
}

afterEach(async () => {
  for (const { endpoint, exited } of started.splice(0)) {
    endpoint.close();
    // Closing our port closes the worker's end; the worker then has nothing left and exits.
    expect(await exited).toBe(0);
  }
});

describe('worker_threads transport (real Worker)', () => {
  it('round-trips every message type, frames transferred not copied', async () => {
    const endpoint = await startHelloed();
    await expectEveryMessageRoundTrips(endpoint);
  });

  it('transfers the frame buffer to the worker', async () => {
    const endpoint = await startHelloed();
    const frame = new Uint8Array(16);
    const reply = nextMessages(endpoint, 1);
    endpoint.sendFrame(frame); // 16 zero bytes: header length 0, an invalid frame
    expect(frame.byteLength).toBe(0); // detached: the buffer moved to the worker
    expect((await reply)[0]!.message.tag).toBe('protocolError');
  });

  it('answers malformed frames with protocolError and keeps working', async () => {
    const endpoint = await startHelloed();
    await expectMalformedFramesRejected(endpoint);
  });

  it('passes tensors in a SharedRegion as descriptors, both ways', async () => {
    const endpoint = await startHelloed();
    const region = SharedRegion.create(1, 1 << 20);
    endpoint.shareRegion(region);
    const source = randomTensor(seededRandom(3), 'f32', [64, 256]);
    const shared = region.allocateTensor('f32', [64, 256])!;
    shared.data.set(source.data);
    const reply = new Promise<{ sameBuffer: boolean; offset: number; values: Float32Array }>((resolve) => {
      const off = endpoint.onMessage((_m, tensors) => {
        off();
        const t = tensors[0]!;
        resolve({
          sameBuffer: t.data.buffer === region.buffer,
          offset: t.data.byteOffset,
          values: t.data.slice() as Float32Array,
        });
      });
    });
    endpoint.post({ tag: 'activations', stepId: 1, microBatch: 0, fromStage: 0, numTokens: 64 }, [shared]);
    const got = await reply;
    expect(got.sameBuffer).toBe(true);
    expect(got.offset).toBe(shared.data.byteOffset);
    expectSameTensors([{ ...shared, data: got.values }], [source]);
  });

  it('replaces a region announced again under its id: the old buffer is no longer a region', async () => {
    const { port1, port2 } = new MessageChannel();
    const a = new WorkerPortEndpoint<Message, Message>(port1, 'a');
    const b = new WorkerPortEndpoint<Message, Message>(port2, 'b');
    const first = SharedRegion.create(1, 1 << 12);
    const second = SharedRegion.create(1, 1 << 13);
    a.shareRegion(first);
    a.shareRegion(second);
    const tensor = first.allocateTensor('f32', [4, 4])!;
    tensor.data.fill(2);
    const received = new Promise<Tensor>((resolve) => b.onMessage((_m, tensors) => resolve(tensors[0]!)));
    a.post({ tag: 'activations', stepId: 1, microBatch: 0, fromStage: 0, numTokens: 4 }, [tensor]);
    const got = await received;
    expect(b.peerRegion(1)?.buffer.byteLength).toBe(second.buffer.byteLength);
    // Sent inline, not as a descriptor into a buffer the peer no longer maps.
    expect(got.data.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(got.data)).toEqual(new Array(16).fill(2));
    a.close();
    b.close();
  });

  it('refuses a wrong token: the worker closes the link', async () => {
    const endpoint = startEcho();
    const error = await connectAndHello(endpoint, {
      role: 'coordinator',
      name: 'test',
      token: 'nope',
      timeoutMs: 30_000,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).reason).toMatch(/wrong token/);
  });
});
