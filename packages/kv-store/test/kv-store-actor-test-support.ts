/**
 * Drives a kv-store over a link the way a coordinator or device would, for the actor tests
 * (in-process and worker transports run the same scenarios).
 */

import { Xoshiro128 } from '@seesaw/model';
import { connectAndHello, type Endpoint, type Message, type Role, type Tensor } from '@seesaw/protocol';
import { expect } from 'vitest';
import { boxShape, type HostKvLayout, type KvSliceBox } from '../src/host-kv-layout.ts';
import { isBitIdentical, randomBits, referenceBox } from './test-support.ts';

export const TEST_TOKEN = 'kv-token';
export const TEST_LAYOUT: HostKvLayout = {
  numLayers: 2,
  numKvHeads: 4,
  headDim: 16,
  tokensPerSlot: 8,
  dtype: 'f32',
};
export const TEST_NUM_SLOTS = 10;

export interface Reply {
  message: Message;
  tensors: Tensor[];
}

/** A link plus an ordered queue of what arrived on it. */
export class TestPeer {
  private readonly inbox: Reply[] = [];
  private waiter: (() => void) | undefined;

  constructor(readonly endpoint: Endpoint<Message, Message>) {}

  async hello(role: Role, token = TEST_TOKEN): Promise<void> {
    await connectAndHello(endpoint(this), { role, name: `test ${role}`, token, timeoutMs: 30_000 });
    this.endpoint.onMessage((message, tensors) => {
      // Copy: tensor views may point into a frame that is reused or transferred.
      this.inbox.push({ message, tensors: tensors.map((t) => ({ ...t, data: t.data.slice() })) });
      this.waiter?.();
    });
  }

  async next(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (Date.now() > deadline) throw new Error(`no message on ${this.endpoint.name} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.inbox.shift()!;
  }

  async ask(message: Message, tensors: Tensor[] = []): Promise<Reply> {
    this.endpoint.post(message, tensors);
    return this.next();
  }
}

function endpoint(peer: TestPeer): Endpoint<Message, Message> {
  return peer.endpoint;
}

function address(requestId: number, box: KvSliceBox) {
  return { requestId, seqId: box.seqId, layers: box.layers, heads: box.heads, tokens: box.tokens };
}

/**
 * The scenario every transport runs: capacity announcement, reserve, puts from two "ranks"
 * (head halves), gets of sub-boxes compared bit-exactly, bad requests answered with kvError
 * or reserveFailed while the store keeps serving, then release.
 */
export async function runStoreScenario(coordinator: TestPeer, device: TestPeer): Promise<void> {
  const announced = await coordinator.next();
  expect(announced.message).toEqual({
    tag: 'capacity',
    requestId: 0,
    numSlots: TEST_NUM_SLOTS,
    numFreeSlots: TEST_NUM_SLOTS,
    slotBytes: 2 * 2 * 4 * 8 * 16 * 4,
  });
  const reserved = await coordinator.ask({ tag: 'reserve', requestId: 1, seqId: 5, numSlots: 3 });
  expect(reserved.message).toMatchObject({ tag: 'reserved', requestId: 1, seqId: 5 });
  const slotIds = (reserved.message as { slotIds: number[] }).slotIds;
  expect(slotIds).toHaveLength(3);

  const { numLayers: L, numKvHeads: H, headDim: D } = TEST_LAYOUT;
  const numTokens = 21;
  const full = randomBits(new Xoshiro128(9), L * 2 * H * numTokens * D);
  const tokens = { start: 0, end: numTokens };
  for (const [i, heads] of [
    { start: 0, end: 2 },
    { start: 2, end: 4 },
  ].entries()) {
    const box = { seqId: 5, layers: { start: 0, end: L }, heads, tokens };
    const data = referenceBox(full, [L, H, numTokens, D], box);
    const done = await device.ask({ tag: 'kvPut', ...address(10 + i, box) }, [
      { dtype: 'f32', shape: boxShape(box, D), data },
    ]);
    expect(done.message).toEqual({ tag: 'kvPutDone', requestId: 10 + i });
  }
  const boxes: KvSliceBox[] = [
    { seqId: 5, layers: { start: 0, end: 2 }, heads: { start: 0, end: 4 }, tokens },
    { seqId: 5, layers: { start: 1, end: 2 }, heads: { start: 1, end: 3 }, tokens: { start: 7, end: 17 } },
  ];
  for (const [i, box] of boxes.entries()) {
    const got = await device.ask({ tag: 'kvGet', ...address(20 + i, box) });
    expect(got.message).toEqual({ tag: 'kvData', ...address(20 + i, box) });
    expect(got.tensors[0]!.shape).toEqual(boxShape(box, D));
    expect(
      isBitIdentical(got.tensors[0]!.data as Float32Array, referenceBox(full, [L, H, numTokens, D], box)),
    ).toBe(true);
  }

  // Bad requests: each gets kvError naming the problem, and the next good one still works.
  const bad: Array<[Message, Tensor[], RegExp]> = [
    [{ tag: 'kvGet', ...address(30, { ...boxes[0]!, seqId: 6 }) }, [], /unknown sequence 6/],
    [
      { tag: 'kvGet', ...address(31, { ...boxes[0]!, tokens: { start: 0, end: 24 } }) },
      [],
      /token 21 was never written/,
    ],
    [
      { tag: 'kvGet', ...address(32, { ...boxes[0]!, heads: { start: 2, end: 6 } }) },
      [],
      /heads \[2, 6\) outside/,
    ],
    [{ tag: 'kvGet', ...address(33, { ...boxes[0]!, tokens: { start: 3, end: 3 } }) }, [], /is empty/],
    [
      { tag: 'kvPut', ...address(34, { ...boxes[0]!, tokens: { start: 20, end: 26 } }) },
      [{ dtype: 'f32', shape: [2, 2, 4, 6, 16], data: new Float32Array(2 * 2 * 4 * 6 * 16) }],
      /tokens \[20, 26\) outside \[0, 24\)/,
    ],
    [
      { tag: 'kvPut', ...address(35, boxes[1]!) },
      [{ dtype: 'bf16', shape: boxShape(boxes[1]!, D), data: new Uint16Array(1 * 2 * 2 * 10 * 16) }],
      /dtype bf16/,
    ],
  ];
  for (const [message, tensors, reason] of bad) {
    const reply = await device.ask(message, tensors);
    expect(reply.message).toMatchObject({
      tag: 'kvError',
      requestId: (message as { requestId: number }).requestId,
    });
    expect((reply.message as { message: string }).message).toMatch(reason);
  }
  const failed = await coordinator.ask({ tag: 'reserve', requestId: 2, seqId: 7, numSlots: 8 });
  expect(failed.message).toEqual({
    tag: 'reserveFailed',
    requestId: 2,
    seqId: 7,
    reason: 'wanted 8 slots, only 7 free',
  });
  const capacity = await coordinator.ask({ tag: 'capacityQuery', requestId: 3 });
  expect(capacity.message).toMatchObject({ tag: 'capacity', requestId: 3, numFreeSlots: 7 });

  const still = await device.ask({ tag: 'kvGet', ...address(40, boxes[1]!) });
  expect(still.message.tag).toBe('kvData');

  // A bad release comes back as a rejected frame; a good one frees the slots.
  const badRelease = await coordinator.ask({ tag: 'release', seqId: 5, slotIds: [slotIds[0]!, 99] });
  expect(badRelease.message).toMatchObject({
    tag: 'protocolError',
    code: 'badField',
    rejectedTag: 'release',
  });
  coordinator.endpoint.post({ tag: 'release', seqId: 5, slotIds });
  const after = await coordinator.ask({ tag: 'capacityQuery', requestId: 4 });
  expect(after.message).toMatchObject({ tag: 'capacity', requestId: 4, numFreeSlots: TEST_NUM_SLOTS });
  const gone = await device.ask({ tag: 'kvGet', ...address(41, boxes[1]!) });
  expect(gone.message).toMatchObject({ tag: 'kvError', requestId: 41 });
}
