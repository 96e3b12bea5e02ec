import { HandshakeError, type Message, SharedRegion, type WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  runStoreScenario,
  TEST_LAYOUT,
  TEST_NUM_SLOTS,
  TEST_TOKEN,
  TestPeer,
} from '../test/kv-store-actor-test-support.ts';
import { slotBytes } from './host-kv-layout.ts';
import { type KvStoreWorker, spawnKvStoreWorker } from './spawn-kv-store-worker.ts';

const started: KvStoreWorker[] = [];

function start(): KvStoreWorker {
  const store = spawnKvStoreWorker(
    {
      name: 'kv-store worker test',
      token: TEST_TOKEN,
      layout: TEST_LAYOUT,
      capacityBytes: TEST_NUM_SLOTS * slotBytes(TEST_LAYOUT),
      isLogged: false,
    },
    { log: () => {} },
  );
  started.push(store);
  return store;
}

afterEach(async () => {
  for (const store of started.splice(0)) {
    store.endpoint.close();
    // The store lives as long as its parent link: closing it ends the thread cleanly.
    expect(await store.exited).toBe(0);
  }
});

describe('kv-store in a worker thread', () => {
  it('serves the coordinator on the parent link and a device on an extra link', async () => {
    const store = start();
    const coordinator = new TestPeer(store.endpoint);
    await coordinator.hello('coordinator');
    const device = new TestPeer(store.openLink('device link'));
    await device.hello('device');
    await runStoreScenario(coordinator, device);
  });

  it('takes kvPut tensors from a shared region without copying them through the frame', async () => {
    const store = start();
    const coordinator = new TestPeer(store.endpoint);
    await coordinator.hello('coordinator');
    await coordinator.next(); // capacity
    const link = store.openLink('device link') as WorkerPortEndpoint<Message, Message>;
    const device = new TestPeer(link);
    await device.hello('device');
    const region = SharedRegion.create(1, 1 << 16);
    link.shareRegion(region);
    expect((await coordinator.ask({ tag: 'reserve', requestId: 1, seqId: 3, numSlots: 1 })).message.tag).toBe(
      'reserved',
    );
    const address = {
      requestId: 2,
      seqId: 3,
      layers: { start: 0, end: 2 },
      heads: { start: 1, end: 3 },
      tokens: { start: 0, end: 5 },
    };
    const shape = [2, 2, 2, 5, 16];
    const shared = region.allocateTensor('f32', shape)!;
    shared.data.forEach((_, i, data) => {
      data[i] = Math.sin(i) * 1e3;
    });
    const expected = (shared.data as Float32Array).slice();
    expect((await device.ask({ tag: 'kvPut', ...address }, [shared])).message).toEqual({
      tag: 'kvPutDone',
      requestId: 2,
    });
    // kvPutDone means the store has copied the slice: the region may be reused at once.
    (shared.data as Float32Array).fill(0);
    region.release(shared);
    const got = await device.ask({ tag: 'kvGet', ...address, requestId: 3 });
    expect(got.message.tag).toBe('kvData');
    expect(got.tensors[0]!.data).toEqual(expected);
  });

  it('copies between a shared device cache and its slots in its own thread: no KV in any frame', async () => {
    const store = start();
    const coordinator = new TestPeer(store.endpoint);
    await coordinator.hello('coordinator');
    await coordinator.next(); // capacity
    const link = store.openLink('device link') as WorkerPortEndpoint<Message, Message>;
    const device = new TestPeer(link);
    await device.hello('device');
    // A device cache of layers [0, 2) x heads [1, 3), blocks of 5 tokens, K and V per layer.
    const { headDim, tokensPerSlot } = TEST_LAYOUT;
    const blockSize = 5;
    const numBlocks = 6;
    const arrayLength = numBlocks * 2 * blockSize * headDim;
    const buffer = new SharedArrayBuffer(4 * arrayLength * 4);
    const arrays = [0, 1, 2, 3].map((i) => new Float32Array(buffer, i * arrayLength * 4, arrayLength));
    arrays.forEach((array, a) => {
      array.forEach((_, i) => {
        array[i] = Math.sin(a * 1e4 + i) * 1e3;
      });
    });
    link.shareRegion(new SharedRegion(1, buffer));
    const share = {
      tag: 'kvCacheShare' as const,
      requestId: 1,
      region: 1,
      layers: { start: 0, end: 2 },
      heads: { start: 1, end: 3 },
      dtype: 'f32' as const,
      numBlocks,
      blockSize,
      headDim,
      keyOffsets: [0, 2 * arrayLength * 4],
      valueOffsets: [arrayLength * 4, 3 * arrayLength * 4],
    };
    expect((await device.ask({ ...share, region: 2 })).message).toMatchObject({
      tag: 'kvError',
      message: expect.stringMatching(/region 2 was not shared with this kv-store/),
    });
    expect((await device.ask(share)).message).toEqual({ tag: 'kvCacheShared', requestId: 1 });
    const numTokens = 7;
    const slotIds = [3, 0];
    expect(numTokens).toBeLessThanOrEqual(slotIds.length * tokensPerSlot);
    const address = {
      seqId: 4,
      layers: { start: 0, end: 2 },
      heads: { start: 1, end: 3 },
      tokens: { start: 0, end: numTokens },
      slotIds,
    };
    const out = await device.ask({ tag: 'kvCopyOut', requestId: 2, ...address, blockIds: [4, 1] });
    expect(out).toEqual({ message: { tag: 'kvCopyDone', requestId: 2 }, tensors: [] });
    // The slots hold the blocks' elements (read back through a frame here, to check them).
    const got = await device.ask({ tag: 'kvGet', requestId: 3, ...address });
    const element = (blocks: number[], l: number, kv: number, h: number, t: number, d: number) =>
      arrays[l * 2 + kv]![
        ((blocks[Math.floor(t / blockSize)]! * 2 + h) * blockSize + (t % blockSize)) * headDim + d
      ]!;
    let i = 0;
    for (let l = 0; l < 2; l++)
      for (let kv = 0; kv < 2; kv++)
        for (let h = 0; h < 2; h++)
          for (let t = 0; t < numTokens; t++)
            for (let d = 0; d < headDim; d++)
              expect(got.tensors[0]!.data[i++]).toBe(element([4, 1], l, kv, h, t, d));
    const copyIn = await device.ask({ tag: 'kvCopyIn', requestId: 4, ...address, blockIds: [2, 5] });
    expect(copyIn).toEqual({ message: { tag: 'kvCopyDone', requestId: 4 }, tensors: [] });
    for (let l = 0; l < 2; l++)
      for (let kv = 0; kv < 2; kv++)
        for (let h = 0; h < 2; h++)
          for (let t = 0; t < numTokens; t++)
            for (let d = 0; d < headDim; d++)
              expect(element([2, 5], l, kv, h, t, d)).toBe(element([4, 1], l, kv, h, t, d));
    // Another link has shared no cache: its copies are refused.
    const other = new TestPeer(store.openLink('other device'));
    await other.hello('device');
    expect(
      (await other.ask({ tag: 'kvCopyIn', requestId: 5, ...address, blockIds: [0, 1] })).message,
    ).toMatchObject({
      tag: 'kvError',
      message: expect.stringMatching(/kvCopyIn before a KV cache was shared on this link/),
    });
  });

  it('refuses a link with the wrong token and keeps serving the others', async () => {
    const store = start();
    const coordinator = new TestPeer(store.endpoint);
    await coordinator.hello('coordinator');
    await coordinator.next();
    const intruder = new TestPeer(store.openLink('intruder'));
    const error = await intruder.hello('device', 'not the token').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).reason).toBe('wrong token');
    const capacity = await coordinator.ask({ tag: 'capacityQuery', requestId: 7 });
    expect(capacity.message).toMatchObject({ tag: 'capacity', requestId: 7, numSlots: TEST_NUM_SLOTS });
  });

  it('ends the thread on a shutdown from the coordinator', async () => {
    const store = start();
    const coordinator = new TestPeer(store.endpoint);
    await coordinator.hello('coordinator');
    const device = new TestPeer(store.openLink());
    await device.hello('device');
    const deviceClosed = new Promise<string>((resolve) => device.endpoint.onClose(resolve));
    store.endpoint.post({ tag: 'shutdown', mode: 'abort' });
    expect(await store.exited).toBe(0);
    expect(await deviceClosed).toBe('port closed');
    started.length = 0;
  });
});
