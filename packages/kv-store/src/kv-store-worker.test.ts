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
