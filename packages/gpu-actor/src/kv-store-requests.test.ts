import { MessageChannel } from 'node:worker_threads';
import { HostKvStore, KV_STORE_INBOUND_TAGS, KvStoreActor, slotBytes } from '@seesaw/kv-store';
import { WorkerPortEndpoint } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { openKvStoreLink } from './kv-store-link.ts';
import { type KvRequest, KvStoreRequests } from './kv-store-requests.ts';

// The request/answer channel against a real kv-store actor over a real MessagePort: answers
// reach the request with their id, a store error names the request, and neither a rejected
// frame nor a closed link leaves a request waiting.

const TOKEN = 'requests-test-token';
const LAYOUT = { numLayers: 2, numKvHeads: 2, headDim: 4, tokensPerSlot: 4, dtype: 'f32' as const };

async function connect() {
  const store = new HostKvStore({ layout: LAYOUT, capacityBytes: 4 * slotBytes(LAYOUT) });
  const actor = new KvStoreActor(store, { name: 'test kv-store', token: TOKEN, log: () => {} });
  const { port1, port2 } = new MessageChannel();
  void actor.serve(new WorkerPortEndpoint(port1, 'store side', { accept: KV_STORE_INBOUND_TAGS }));
  const link = await openKvStoreLink(port2, { deviceName: 'test device', token: TOKEN });
  return { requests: new KvStoreRequests(link), storePort: port1 };
}

function get(
  seqId: number,
  slotIds: number[],
  numTokens: number,
  tag: 'kvGet' | 'kvPut' = 'kvGet',
): KvRequest {
  return {
    tag,
    requestId: 0,
    seqId,
    layers: { start: 0, end: LAYOUT.numLayers },
    heads: { start: 0, end: LAYOUT.numKvHeads },
    tokens: { start: 0, end: numTokens },
    slotIds,
  };
}

describe('KvStoreRequests', () => {
  it('resolves each request with its own answer and names a failed one', async () => {
    const { requests } = await connect();
    const elements = LAYOUT.numLayers * 2 * LAYOUT.numKvHeads * 3 * LAYOUT.headDim;
    const data = new Float32Array(elements).map((_, i) => i + 0.5);
    const tensor = { dtype: 'f32' as const, shape: [2, 2, 2, 3, 4], data };
    const put = requests.send('put of sequence 1', get(1, [2], 3, 'kvPut'), tensor);
    const never = requests.send('get of sequence 2', get(2, [3], 3));
    expect(await put).toBeUndefined();
    await expect(never).rejects.toThrow(/^get of sequence 2: kv-store: .*never written/);
    const back = await requests.send('get of sequence 1', get(1, [2], 3));
    expect(back!.data).toEqual(data);
    requests.close('test done');
  });

  it('fails every outstanding request when the store rejects a frame or the link closes', async () => {
    const { requests, storePort } = await connect();
    // The store answers in order: the request behind the rejected frame is still outstanding
    // when the rejection (which names no request) comes, and fails with it.
    const malformed = { ...get(1, [0], 2), layers: { start: 0, end: 'all' } } as unknown as KvRequest;
    const rejected = requests.send('get of sequence 9', malformed);
    const behind = requests.send('get of sequence 1', get(1, [0], 2));
    await expect(rejected).rejects.toThrow(/^get of sequence 9: kv-store rejected a kvGet/);
    await expect(behind).rejects.toThrow(/^get of sequence 1: kv-store rejected a kvGet/);

    const { requests: second, storePort: secondPort } = await connect();
    const waiting = second.send('get of sequence 3', get(3, [1], 2));
    secondPort.close();
    await expect(waiting).rejects.toThrow(/kv-store link closed/);
    await expect(second.send('get of sequence 4', get(4, [1], 2))).rejects.toThrow(
      /^get of sequence 4: kv-store link closed/,
    );
    requests.close('test done');
    storePort.close();
  });
});
