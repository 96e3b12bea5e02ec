import { createInProcessPair, encodeFrame, INBOUND_TAGS, type Message, type Role } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import {
  runStoreScenario,
  TEST_LAYOUT,
  TEST_NUM_SLOTS,
  TEST_TOKEN,
  TestPeer,
} from '../test/kv-store-actor-test-support.ts';
import { slotBytes } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';
import { KvStoreActor } from './kv-store-actor.ts';
import { KV_STORE_INBOUND_TAGS } from './kv-store-link.ts';

function startActor(options: { onShutdown?: (mode: string) => void } = {}) {
  const store = new HostKvStore({
    layout: TEST_LAYOUT,
    capacityBytes: TEST_NUM_SLOTS * slotBytes(TEST_LAYOUT),
  });
  const lines: string[] = [];
  const actor = new KvStoreActor(store, {
    name: 'kv-store test',
    token: TEST_TOKEN,
    log: (line) => lines.push(line),
    onShutdown: options.onShutdown,
  });
  return { actor, store, lines };
}

/** Connects a peer of `role` to the actor over an in-process pair. */
async function connect(actor: KvStoreActor, role: Role, isEncoded = true) {
  const accept = role === 'coordinator' ? INBOUND_TAGS.kvStoreToCoordinator : INBOUND_TAGS.kvStoreToDevice;
  const [storeSide, peerSide] = createInProcessPair<Message, Message>({
    accepts: [KV_STORE_INBOUND_TAGS, accept],
    isEncoded,
    log: () => {},
    names: [`store <- ${role}`, `${role} -> store`],
  });
  const served = actor.serve(storeSide);
  const peer = new TestPeer(peerSide);
  await peer.hello(role);
  expect((await served).role).toBe(role);
  return { peer, storeSide };
}

describe('KvStoreActor over in-process links', () => {
  it('serves coordinator and device requests (encoded frames)', async () => {
    const { actor } = startActor();
    const coordinator = await connect(actor, 'coordinator');
    const device = await connect(actor, 'device');
    await runStoreScenario(coordinator.peer, device.peer);
    expect(actor.counters.numPuts).toBe(2);
    expect(actor.counters.numGets).toBe(3);
    expect(actor.numLinks).toBe(2);
  });

  it('serves the same over unencoded links, where it must check everything itself', async () => {
    const { actor } = startActor();
    const coordinator = await connect(actor, 'coordinator', false);
    const device = await connect(actor, 'device', false);
    await runStoreScenario(coordinator.peer, device.peer);
    // Malformed objects that the frame validator would have stopped.
    const noTensor = await device.peer.ask({
      tag: 'kvPut',
      requestId: 50,
      seqId: 5,
      layers: { start: 0, end: 1 },
      heads: { start: 0, end: 1 },
      tokens: { start: 0, end: 1 },
    });
    expect(noTensor.message).toMatchObject({
      tag: 'kvError',
      requestId: 50,
      message: expect.stringMatching(/one tensor/),
    });
    const garbage = await device.peer.ask({ tag: 'kvGet', requestId: -3, seqId: 'x' } as unknown as Message);
    expect(garbage.message).toMatchObject({ tag: 'kvError', requestId: 0, message: 'bad seqId x' });
    const reserve = await coordinator.peer.ask({ tag: 'reserve', requestId: 9, seqId: 1, numSlots: 1.5 });
    expect(reserve.message).toMatchObject({ tag: 'reserveFailed', reason: 'bad slot count 1.5' });
    const stillServing = await coordinator.peer.ask({ tag: 'capacityQuery', requestId: 10 });
    expect(stillServing.message).toMatchObject({ tag: 'capacity', numFreeSlots: TEST_NUM_SLOTS });
  });

  it('answers frames it cannot decode or does not expect, and keeps serving', async () => {
    const { actor } = startActor();
    const coordinator = await connect(actor, 'coordinator');
    await coordinator.peer.next(); // capacity announcement
    const device = await connect(actor, 'device');
    const peerSide = device.peer.endpoint as unknown as { sendFrame(frame: Uint8Array): void };
    peerSide.sendFrame(new Uint8Array([1, 2, 3]));
    expect((await device.peer.next()).message).toMatchObject({ tag: 'protocolError', code: 'truncated' });
    // Shape [1,2,1,1,16] does not match the address's [1,2,1,2,16]: rejected by the frame validator.
    const address = {
      requestId: 3,
      seqId: 0,
      layers: { start: 0, end: 1 },
      heads: { start: 0, end: 1 },
      tokens: { start: 0, end: 2 },
    };
    peerSide.sendFrame(
      encodeFrame({ tag: 'kvPut', ...address }, [
        { dtype: 'f32', shape: [1, 2, 1, 1, 16], data: new Float32Array(32) },
      ]),
    );
    expect((await device.peer.next()).message).toMatchObject({ tag: 'protocolError', code: 'badTensor' });
    // A coordinator request on a device link.
    const wrongLink = await device.peer.ask({ tag: 'reserve', requestId: 4, seqId: 0, numSlots: 1 });
    expect(wrongLink.message).toMatchObject({
      tag: 'protocolError',
      code: 'unexpected',
      rejectedTag: 'reserve',
    });
    const wrongLink2 = await coordinator.peer.ask({ tag: 'kvGet', ...address });
    expect(wrongLink2.message).toMatchObject({
      tag: 'protocolError',
      code: 'unexpected',
      rejectedTag: 'kvGet',
    });
    const beat = await device.peer.ask({ tag: 'heartbeat', seq: 1, sentAtMs: Date.now() });
    expect(beat.message.tag).toBe('heartbeat');
    // Still serving: a reserve and a put/get round trip work.
    expect(
      (await coordinator.peer.ask({ tag: 'reserve', requestId: 5, seqId: 0, numSlots: 1 })).message.tag,
    ).toBe('reserved');
    const data = new Float32Array(64).map((_, i) => i);
    const put = await device.peer.ask({ tag: 'kvPut', ...address }, [
      { dtype: 'f32', shape: [1, 2, 1, 2, 16], data },
    ]);
    expect(put.message).toEqual({ tag: 'kvPutDone', requestId: 3 });
    const got = await device.peer.ask({ tag: 'kvGet', ...address });
    expect(Array.from(got.tensors[0]!.data)).toEqual(Array.from(data));
  });

  it('refuses a hello with the wrong token and serves nothing on that link', async () => {
    const { actor, lines } = startActor();
    const [storeSide, peerSide] = createInProcessPair<Message, Message>({ log: () => {} });
    const served = actor.serve(storeSide);
    served.catch(() => {}); // awaited below; keep it from counting as unhandled meanwhile
    const peer = new TestPeer(peerSide);
    await expect(peer.hello('device', 'wrong')).rejects.toThrow(/wrong token/);
    await expect(served).rejects.toThrow(/wrong token/);
    expect(actor.numLinks).toBe(0);
    expect(lines.some((line) => line.includes('refused'))).toBe(true);
  });

  it('closes every link on shutdown', async () => {
    const modes: string[] = [];
    const { actor } = startActor({ onShutdown: (mode) => modes.push(mode) });
    const coordinator = await connect(actor, 'coordinator');
    const device = await connect(actor, 'device');
    const closed = new Promise<string>((resolve) => device.peer.endpoint.onClose(resolve));
    coordinator.peer.endpoint.post({ tag: 'shutdown', mode: 'drain' });
    expect(await closed).toBe('closed by peer');
    expect(modes).toEqual(['drain']);
    expect(actor.numLinks).toBe(0);
  });

  it("answers a device's swap before another device's prefetches posted earlier, each link in order", async () => {
    const { actor } = startActor();
    const coordinator = await connect(actor, 'coordinator');
    await coordinator.peer.next(); // capacity
    const tp0 = await connect(actor, 'device');
    const tp1 = await connect(actor, 'device');
    expect(
      (await coordinator.peer.ask({ tag: 'reserve', requestId: 1, seqId: 7, numSlots: 1 })).message,
    ).toMatchObject({
      tag: 'reserved',
      slotIds: [0],
    });
    const box = {
      seqId: 7,
      layers: { start: 0, end: 2 },
      heads: { start: 0, end: 4 },
      tokens: { start: 0, end: 8 },
      slotIds: [0],
    };
    const data = Float32Array.from({ length: 2 * 2 * 4 * 8 * 16 }, (_, i) => Math.cos(i));
    const put = await tp0.peer.ask({ tag: 'kvPut', requestId: 2, ...box }, [
      { dtype: 'f32', shape: [2, 2, 4, 8, 16], data },
    ]);
    expect(put.message).toEqual({ tag: 'kvPutDone', requestId: 2 });
    // Both links' answers, in the order the store sent them.
    const answered: string[] = [];
    tp0.peer.endpoint.onMessage((message) =>
      answered.push(`tp0 ${(message as { requestId: number }).requestId}`),
    );
    tp1.peer.endpoint.onMessage((message) =>
      answered.push(`tp1 ${(message as { requestId: number }).requestId}`),
    );
    const numPrefetches = 20;
    for (let i = 0; i < numPrefetches; i++)
      tp0.peer.endpoint.post({ tag: 'kvGet', requestId: 10 + i, ...box, isPrefetch: true });
    tp1.peer.endpoint.post({ tag: 'kvGet', requestId: 100, ...box });
    for (let i = 0; i < numPrefetches; i++) expect((await tp0.peer.next()).message.tag).toBe('kvData');
    expect((await tp1.peer.next()).tensors[0]!.data).toEqual(data);
    expect(answered[0]).toBe('tp1 100');
    expect(answered.slice(1)).toEqual(Array.from({ length: numPrefetches }, (_, i) => `tp0 ${10 + i}`));
  });

  it('serves what devices queued before a drain shutdown closes the links', async () => {
    const { actor } = startActor();
    const coordinator = await connect(actor, 'coordinator');
    await coordinator.peer.next(); // capacity
    const device = await connect(actor, 'device');
    device.peer.endpoint.post({ tag: 'heartbeat', seq: 0, sentAtMs: 0 });
    coordinator.peer.endpoint.post({ tag: 'shutdown', mode: 'drain' });
    expect((await device.peer.next()).message.tag).toBe('heartbeat');
    expect(actor.numLinks).toBe(0);
  });
});
