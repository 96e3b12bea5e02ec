/**
 * Checks every transport test runs: round trips of every message type, and malformed
 * frames answered with protocolError while the receiver keeps working.
 */

import { expect } from 'vitest';
import type { Endpoint } from '../src/endpoint.ts';
import type { Message } from '../src/messages/index.ts';
import { type Tensor, tensorBytes } from '../src/tensor.ts';
import { seededRandom } from './random.ts';
import { rawFrame } from './raw-frames.ts';
import { oddSizeSamples, type Sample, sampleMessages } from './sample-messages.ts';

/** Collects the next `count` messages arriving on `endpoint`. */
export function nextMessages(endpoint: Endpoint, count: number, timeoutMs = 10_000): Promise<Sample[]> {
  return new Promise((resolve, reject) => {
    const received: Sample[] = [];
    const timer = setTimeout(() => {
      off();
      reject(new Error(`got ${received.length} of ${count} messages in ${timeoutMs} ms`));
    }, timeoutMs);
    const off = endpoint.onMessage((message, tensors) => {
      // Copy the views: the frame may be reused or transferred after the handler returns.
      received.push({ message, tensors: tensors.map((t) => ({ ...t, data: t.data.slice() })) });
      if (received.length === count) {
        clearTimeout(timer);
        off();
        resolve(received);
      }
    });
  });
}

export function expectSameTensors(actual: readonly Tensor[], expected: readonly Tensor[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((t, i) => {
    const e = expected[i]!;
    expect({ dtype: t.dtype, shape: t.shape, type: t.data.constructor.name }).toEqual({
      dtype: e.dtype,
      shape: e.shape,
      type: e.data.constructor.name,
    });
    expect(Buffer.from(tensorBytes(t)).equals(Buffer.from(tensorBytes(e)))).toBe(true);
  });
}

/** Posts every sample from `sender`; `echo` returns them; checks what comes back. */
export async function expectEveryMessageRoundTrips(sender: Endpoint, samples?: Sample[]): Promise<void> {
  const random = seededRandom(7);
  const all = samples ?? [...sampleMessages(random), ...oddSizeSamples(random)];
  const replies = nextMessages(sender, all.length);
  for (const { message, tensors } of all) sender.post(message, tensors);
  const received = await replies;
  received.forEach((r, i) => {
    expect(r.message).toEqual(all[i]!.message);
    expectSameTensors(r.tensors, all[i]!.tensors);
  });
}

/** Malformed frames of every kind; each must earn one protocolError with this code. */
export function malformedFrames(): Array<{ frame: Uint8Array; code: string }> {
  const absurd = new Uint8Array(12);
  new DataView(absurd.buffer).setUint32(0, 0x7fff_ffff, true);
  const header = {
    v: 1,
    tag: 'allReduceChunk',
    opId: 0,
    stepId: 0,
    round: 0,
    chunkIndex: 0,
    numChunks: 1,
    fromRank: 0,
  };
  const badShape = rawFrame(
    { ...header, tensors: [{ dtype: 'f32', shape: [3], byteLength: 16 }] },
    new Uint8Array(16),
  );
  const truncated = rawFrame(
    { ...header, tensors: [{ dtype: 'f32', shape: [4], byteLength: 16 }] },
    new Uint8Array(16),
  );
  return [
    { frame: rawFrame({ v: 1, tag: 'noSuchTag', tensors: [] }), code: 'unknownTag' },
    { frame: badShape, code: 'badTensor' },
    { frame: truncated.subarray(0, truncated.byteLength - 5), code: 'truncated' },
    { frame: absurd, code: 'headerTooLarge' },
    { frame: new Uint8Array([1, 2]), code: 'truncated' },
    { frame: rawFrame({ v: 1, tag: 'heartbeat', seq: 'one', sentAtMs: 0, tensors: [] }), code: 'badField' },
  ];
}

/**
 * Sends malformed frames raw through `sender`; expects one protocolError per frame back,
 * then a valid message still round-trips (the receiver is alive).
 */
export async function expectMalformedFramesRejected(
  sender: Endpoint & { sendFrame(frame: Uint8Array): void },
): Promise<void> {
  const bad = malformedFrames();
  const replies = nextMessages(sender, bad.length);
  for (const { frame } of bad) sender.sendFrame(frame);
  const received = await replies;
  expect(received.map((r) => r.message.tag)).toEqual(bad.map(() => 'protocolError'));
  expect(received.map((r) => (r.message as Extract<Message, { tag: 'protocolError' }>).code)).toEqual(
    bad.map((b) => b.code),
  );
  const alive = nextMessages(sender, 1);
  sender.post({ tag: 'heartbeat', seq: 99, sentAtMs: 1 });
  expect((await alive)[0]!.message).toEqual({ tag: 'heartbeat', seq: 99, sentAtMs: 1 });
}
