/**
 * Throughput of the host KV tier on this machine: store put/get of whole sequences and
 * tensor-parallel head slices, paged-cache gather/scatter, and kvPut/kvGet through the actor
 * over a worker link. Run: pnpm tsx packages/kv-store/bench/kv-store-bench.ts
 */

import { connectAndHello, type Message, SharedRegion, type Tensor } from '@seesaw/protocol';
import {
  gatherSequenceKv,
  type HostKvLayout,
  HostKvStore,
  type KvSliceBox,
  type PagedKvLayout,
  scatterSequenceKv,
  spawnKvStoreWorker,
} from '../src/index.ts';

function timeIt(repeats: number, run: () => void): number {
  run(); // warm-up (arenas, JIT)
  const start = process.hrtime.bigint();
  for (let i = 0; i < repeats; i++) run();
  return Number(process.hrtime.bigint() - start) / 1e9 / repeats;
}

function report(what: string, bytes: number, seconds: number): void {
  console.log(
    `${what.padEnd(58)} ${(bytes / 2 ** 20).toFixed(1).padStart(8)} MiB  ${(bytes / seconds / 1e9).toFixed(2).padStart(6)} GB/s`,
  );
}

// Llama-3-8B-like KV geometry in bf16.
const layout: HostKvLayout = { numLayers: 32, numKvHeads: 8, headDim: 128, tokensPerSlot: 16, dtype: 'bf16' };
const numTokens = 1024;
const store = new HostKvStore({ layout, capacityBytes: 2 * 1024 ** 3 });
store.reserve(1, numTokens / layout.tokensPerSlot);
const whole: KvSliceBox = {
  seqId: 1,
  layers: { start: 0, end: 32 },
  heads: { start: 0, end: 8 },
  tokens: { start: 0, end: numTokens },
};
const wholeData: Tensor = {
  dtype: 'bf16',
  shape: [32, 2, 8, numTokens, 128],
  data: new Uint16Array(32 * 2 * 8 * numTokens * 128).map((_, i) => i),
};
const bytes = wholeData.data.byteLength;
console.log(`store: ${store.numSlots} slots of ${store.slotBytes} bytes (capacity 2 GiB)`);
report(
  'put 1 sequence x 1024 tokens, all layers/heads (bf16)',
  bytes,
  timeIt(5, () => store.put(whole, wholeData)),
);
const out = new Uint16Array(wholeData.data.length);
report(
  'get the same',
  bytes,
  timeIt(5, () => store.get(whole, out)),
);
const rank: KvSliceBox = { ...whole, heads: { start: 2, end: 4 } };
report(
  'get TP slice heads [2,4) (1/4 of the heads)',
  bytes / 4,
  timeIt(10, () => store.get(rank)),
);
const rankOut = new Uint16Array(wholeData.data.length / 4);
report(
  'get TP slice heads [2,4) into a reused buffer',
  bytes / 4,
  timeIt(10, () => store.get(rank, rankOut)),
);
const oneLayer: KvSliceBox = { ...whole, layers: { start: 5, end: 6 } };
const oneLayerData: Tensor = {
  dtype: 'bf16',
  shape: [1, 2, 8, numTokens, 128],
  data: new Uint16Array(bytes / 2 / 32),
};
report(
  'put one layer (prefill streaming)',
  bytes / 32,
  timeIt(20, () => store.put(oneLayer, oneLayerData)),
);

// Device-side conversion on the f32 paged cache (same geometry, f32 as the CPU device keeps it).
const paged: PagedKvLayout = { numKvHeads: 8, headDim: 128, blockSize: 16 };
const numBlocks = 128;
const cacheK = Array.from({ length: 32 }, () => new Float32Array(numBlocks * 8 * 16 * 128));
const cacheV = Array.from({ length: 32 }, () => new Float32Array(numBlocks * 8 * 16 * 128));
const table = Array.from({ length: numTokens / 16 }, (_, i) => (i * 37) % numBlocks);
const heads = { start: 0, end: 8 };
const sliceOut = new Float32Array(32 * 2 * 8 * numTokens * 128);
report(
  'gatherSequenceKv 1024 tokens f32 (scattered blocks)',
  sliceOut.byteLength,
  timeIt(3, () => gatherSequenceKv(cacheK, cacheV, table, numTokens, paged, heads, { out: sliceOut })),
);
report(
  'scatterSequenceKv the same',
  sliceOut.byteLength,
  timeIt(3, () => scatterSequenceKv(cacheK, cacheV, table, numTokens, paged, heads, sliceOut)),
);

// Through the actor in a worker thread: kvPut then kvGet of one layer-sized f32 slice.
const workerLayout: HostKvLayout = { ...layout, dtype: 'f32' };
const worker = spawnKvStoreWorker({
  name: 'bench',
  token: 't',
  layout: workerLayout,
  capacityBytes: 1024 ** 3,
  isLogged: false,
});
await connectAndHello(worker.endpoint, { role: 'coordinator', name: 'bench', token: 't', timeoutMs: 60_000 });
const device = worker.openLink('bench device');
await connectAndHello(device, { role: 'device', name: 'bench', token: 't', timeoutMs: 60_000 });
const replies: Message[] = [];
let wake: () => void = () => {};
worker.endpoint.onMessage((m) => replies.push(m));
device.onMessage((m) => {
  replies.push(m);
  wake();
});
const waitFor = (tag: string) =>
  new Promise<void>((resolve) => {
    const check = () => (replies.some((m) => m.tag === tag) ? resolve() : undefined);
    wake = check;
    check();
  });
worker.endpoint.post({ tag: 'reserve', requestId: 1, seqId: 1, numSlots: numTokens / 16 });
const address = { seqId: 1, layers: { start: 0, end: 4 }, heads, tokens: { start: 0, end: numTokens } };
const slice: Tensor = {
  dtype: 'f32',
  shape: [4, 2, 8, numTokens, 128],
  data: new Float32Array(4 * 2 * 8 * numTokens * 128),
};
const rounds = 10;
let putSeconds = 0;
let getSeconds = 0;
for (let i = 0; i <= rounds; i++) {
  replies.length = 0;
  let t0 = performance.now();
  device.post({ tag: 'kvPut', requestId: 2 * i, ...address }, [slice]);
  await waitFor('kvPutDone');
  const put = performance.now() - t0;
  replies.length = 0;
  t0 = performance.now();
  device.post({ tag: 'kvGet', requestId: 2 * i + 1, ...address });
  await waitFor('kvData');
  if (i > 0) {
    putSeconds += put / 1e3;
    getSeconds += (performance.now() - t0) / 1e3;
  }
}
report(
  'actor in worker: kvPut 4 layers f32 (frame copy + store copy)',
  slice.data.byteLength,
  putSeconds / rounds,
);
report('actor in worker: kvGet the same', slice.data.byteLength, getSeconds / rounds);

// kvPut from a SharedRegion the device shares on its link: only a descriptor crosses.
const region = SharedRegion.create(1, slice.data.byteLength + 4096);
device.shareRegion(region);
const sharedSlice = region.allocateTensor('f32', slice.shape)!;
let sharedSeconds = 0;
for (let i = 0; i <= rounds; i++) {
  replies.length = 0;
  const t0 = performance.now();
  device.post({ tag: 'kvPut', requestId: 1000 + i, ...address }, [sharedSlice]);
  await waitFor('kvPutDone');
  if (i > 0) sharedSeconds += (performance.now() - t0) / 1e3;
}
report(
  'actor in worker: kvPut from a shared region (store copy only)',
  slice.data.byteLength,
  sharedSeconds / rounds,
);
worker.endpoint.close();
await worker.exited;
