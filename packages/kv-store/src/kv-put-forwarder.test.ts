import { MessageChannel } from 'node:worker_threads';
import { type Message, type Tensor, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_LAYOUT, TEST_NUM_SLOTS, TEST_TOKEN, TestPeer } from '../test/kv-store-actor-test-support.ts';
import { slotBytes } from './host-kv-layout.ts';
import type { KvForwardingSpec } from './kv-forwarding-table.ts';
import type { KvLinkAnnouncement, KvPeerStoreAnnouncement } from './kv-store-worker-data.ts';
import { type KvStoreWorker, spawnKvStoreWorker } from './spawn-kv-store-worker.ts';

const started: KvStoreWorker[] = [];

async function startStore(name: string): Promise<KvStoreWorker> {
  const store = spawnKvStoreWorker(
    {
      name,
      token: TEST_TOKEN,
      layout: TEST_LAYOUT,
      capacityBytes: TEST_NUM_SLOTS * slotBytes(TEST_LAYOUT),
      isLogged: false,
    },
    { log: () => {} },
  );
  started.push(store);
  await new TestPeer(store.endpoint).hello('coordinator');
  return store;
}

afterEach(async () => {
  for (const store of started.splice(0)) {
    store.endpoint.close();
    expect(await store.exited).toBe(0);
  }
});

/** P2 <-> T2 over hosts a (device 0) and b (device 1); TEST_LAYOUT has 2 layers, 4 KV heads. */
const SPEC: KvForwardingSpec = {
  numLayers: TEST_LAYOUT.numLayers,
  numKvHeads: TEST_LAYOUT.numKvHeads,
  layouts: [
    { tp: 1, pp: 2 },
    { tp: 2, pp: 1 },
  ],
  deviceHosts: ['a', 'b'],
  host: 'a',
};

/** Host a's store with a link to host b's store, and a device link on each. */
async function twoHostStores(): Promise<{ deviceA: TestPeer; deviceB: TestPeer; storeB: KvStoreWorker }> {
  const [storeA, storeB] = await Promise.all([startStore('kv-store a'), startStore('kv-store b')]);
  const peer = new MessageChannel();
  storeB.sendLinkPort(peer.port2);
  storeA.worker.postMessage({ seesawKvPeerStore: peer.port1, host: 'b' } satisfies KvPeerStoreAnnouncement, [
    peer.port1,
  ]);
  const linkA = new MessageChannel();
  storeA.worker.postMessage({ seesawKvLink: linkA.port2, forwarding: SPEC } satisfies KvLinkAnnouncement, [
    linkA.port2,
  ]);
  const deviceA = new TestPeer(new WorkerPortEndpoint<Message, Message>(linkA.port1, 'device a'));
  const deviceB = new TestPeer(storeB.openLink('device b'));
  await Promise.all([deviceA.hello('device'), deviceB.hello('device')]);
  return { deviceA, deviceB, storeB };
}

const TOKENS = { start: 0, end: 6 };
const SLOTS = [3];

function randomTensor(seed: number): Tensor {
  // Layer 0 (device 0's P2 stage), all 4 heads: [1, 2, 4, 6, headDim].
  const data = new Float32Array(1 * 2 * 4 * 6 * TEST_LAYOUT.headDim);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    data[i] = x / 2147483648 - 0.5;
  }
  return { dtype: 'f32', shape: [1, 2, 4, 6, TEST_LAYOUT.headDim], data };
}

describe('KvPutForwarder between two kv-store threads', () => {
  it('a put on host a is answered once host b stored the heads its T2 device owns, and only those', async () => {
    const seed = Date.now() % 100_000;
    console.log(`kv-put-forwarder seed ${seed}`);
    const { deviceA, deviceB } = await twoHostStores();
    const tensor = randomTensor(seed);
    const put = {
      seqId: 7,
      layers: { start: 0, end: 1 },
      heads: { start: 0, end: 4 },
      tokens: TOKENS,
      slotIds: SLOTS,
    };
    expect((await deviceA.ask({ tag: 'kvPut', requestId: 1, ...put }, [tensor])).message).toEqual({
      tag: 'kvPutDone',
      requestId: 1,
    });
    // Host b holds layer 0, heads 2-3 (device 1's share under T2), equal to what was put.
    const got = await deviceB.ask({ tag: 'kvGet', requestId: 2, ...put, heads: { start: 2, end: 4 } });
    expect(got.message.tag).toBe('kvData');
    const expected = new Float32Array(1 * 2 * 2 * 6 * TEST_LAYOUT.headDim);
    const src = tensor.data as Float32Array;
    const headElements = 6 * TEST_LAYOUT.headDim;
    for (let kv = 0; kv < 2; kv++)
      for (let h = 0; h < 2; h++)
        expected
          .subarray((kv * 2 + h) * headElements, (kv * 2 + h + 1) * headElements)
          .set(src.subarray((kv * 4 + h + 2) * headElements, (kv * 4 + h + 3) * headElements));
    expect(Array.from(got.tensors[0]!.data as Float32Array)).toEqual(Array.from(expected));
    // Heads 0-1 are device 0's under both layouts: never sent to host b.
    const notThere = await deviceB.ask({ tag: 'kvGet', requestId: 3, ...put, heads: { start: 0, end: 2 } });
    expect(notThere.message.tag).toBe('kvError');
  });

  it('a put whose forward cannot reach host b is answered with kvError naming the host', async () => {
    const { deviceA, storeB } = await twoHostStores();
    // Host b's store ends: its links close, the one from host a's store among them.
    storeB.endpoint.close();
    await storeB.exited;
    const put = {
      seqId: 7,
      layers: { start: 0, end: 1 },
      heads: { start: 0, end: 4 },
      tokens: TOKENS,
      slotIds: SLOTS,
    };
    const answer = await deviceA.ask({ tag: 'kvPut', requestId: 1, ...put }, [randomTensor(1)]);
    expect(answer.message.tag).toBe('kvError');
    expect((answer.message as { message: string }).message).toMatch(/kv-store of b|link to b/);
  });
});
