/**
 * Swap-out and swap-in through the host's kv-store worker thread on its two paths, in one run:
 * frames (the device gathers a sequence into a fresh tensor, posts it, the store copies it into
 * its slots; the other way the same) and shared memory (the cache is a SharedArrayBuffer the store
 * copies from and into itself: one copy per direction, no frame). The KV geometry is the `small`
 * generated model's (12 layers x 4 KV heads x 64), f32 and bf16; ms per MiB are medians of the
 * rounds, the ratio is frames / shared measured side by side, so a busy machine skews both alike.
 * Run: pnpm bench:kv-copy [numSeqs] [tokensPerSeq] [rounds]
 */
import { MessageChannel } from 'node:worker_threads';
import { hostKvLayoutFor, slotBytes, spawnKvStoreWorker } from '@seesaw/kv-store';
import type { ModelConfig } from '@seesaw/model';
import { connectAndHello, INBOUND_TAGS, type StepBatch, type StepKvSwap } from '@seesaw/protocol';
import { KvStoreSwapper } from '../src/device-kv-store-swap.ts';
import { KvCacheArena } from '../src/kv-cache-arena.ts';
import { openKvStoreLink, regionSharerOf } from '../src/kv-store-link.ts';
import { PagedKvCache } from '../src/paged-kv-cache.ts';

const [seqsArg = '8', tokensArg = '512', roundsArg = '7'] = process.argv.slice(2);
const numSeqs = Number(seqsArg);
const numTokens = Number(tokensArg);
const numRounds = Number(roundsArg);
const BLOCK_SIZE = 16;
const TOKEN = 'kv-copy-bench';
const config = { numLayers: 12, numKvHeads: 4, headDim: 64 } as ModelConfig;
const blocksPerSeq = Math.ceil(numTokens / BLOCK_SIZE);
// Two homes per sequence (swap out of one, back into the other).
const numBlocks = 2 * numSeqs * blocksPerSeq;

type Path = 'frames' | 'shared';
type KvDType = 'f32' | 'bf16';

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

async function measure(dtype: KvDType) {
  const layout = hostKvLayoutFor(config, BLOCK_SIZE, dtype);
  const capacityBytes = numSeqs * blocksPerSeq * slotBytes(layout);
  const store = spawnKvStoreWorker(
    { name: 'bench kv-store', token: TOKEN, layout, capacityBytes, isLogged: false },
    { accept: INBOUND_TAGS.kvStoreToCoordinator },
  );
  await connectAndHello(store.endpoint, {
    role: 'coordinator',
    name: 'bench',
    token: TOKEN,
    timeoutMs: 60_000,
  });
  const swapperFor = async (path: Path) => {
    const { port1, port2 } = new MessageChannel();
    store.sendLinkPort(port2);
    const link = await openKvStoreLink(port1, { deviceName: `bench ${path}`, token: TOKEN });
    // Both caches live in an arena, as a device worker's does; only the sharing differs.
    const cache = new PagedKvCache(config, numBlocks, BLOCK_SIZE, dtype, new KvCacheArena());
    for (const array of [...cache.keys, ...cache.values]) array.fill(1);
    const all = { start: 0, end: config.numLayers };
    const heads = { start: 0, end: config.numKvHeads };
    const sharer = path === 'shared' ? regionSharerOf(link) : undefined;
    const swapper = new KvStoreSwapper(link, cache, all, heads, sharer);
    if ((await swapper.sharing) !== (path === 'shared')) throw new Error(`${path}: sharing not as expected`);
    return swapper;
  };
  const swappers = { frames: await swapperFor('frames'), shared: await swapperFor('shared') };
  const swaps = (home: number): StepKvSwap[] =>
    Array.from({ length: numSeqs }, (_, s) => ({
      seqId: s,
      numTokens,
      blockIds: Array.from({ length: blocksPerSeq }, (_, b) => (home * numSeqs + s) * blocksPerSeq + b),
      slotIds: Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
    }));
  const step = (lists: Partial<StepBatch>): StepBatch => ({
    stepId: 0,
    addedSeqs: [],
    releasedSeqIds: [],
    seqs: [],
    ...lists,
  });
  const times: Record<Path, { out: number[]; in: number[] }> = {
    frames: { out: [], in: [] },
    shared: { out: [], in: [] },
  };
  for (let round = 0; round < numRounds + 1; round++) {
    for (const path of ['frames', 'shared'] as const) {
      const swapper = swappers[path];
      let start = performance.now();
      await swapper.apply(step({ swapOuts: swaps(round % 2) }));
      const outMs = performance.now() - start;
      start = performance.now();
      await swapper.apply(step({ swapIns: swaps(1 - (round % 2)) }));
      const inMs = performance.now() - start;
      if (round === 0) continue; // warm-up: first touch of slots and JIT
      times[path].out.push(outMs);
      times[path].in.push(inMs);
    }
  }
  for (const swapper of Object.values(swappers)) swapper.close('bench done');
  store.endpoint.close('bench done');
  await store.exited;
  const bytesPerToken = config.numLayers * 2 * config.numKvHeads * config.headDim * (dtype === 'f32' ? 4 : 2);
  const mib = (numSeqs * numTokens * bytesPerToken) / 2 ** 20;
  return { dtype, bytesPerToken, mib, times };
}

console.log(
  `${numSeqs} sequences x ${numTokens} tokens, small-model KV (12 layers x 4 KV heads x 64), median of ${numRounds} rounds`,
);
console.log('dtype  KV bytes/token   MiB/swap   path     swap-out ms/MiB   swap-in ms/MiB');
const ratios: string[] = [];
for (const dtype of ['f32', 'bf16'] as const) {
  const { bytesPerToken, mib, times } = await measure(dtype);
  const perMib = (ms: number[]) => median(ms) / mib;
  for (const path of ['frames', 'shared'] as const)
    console.log(
      `${dtype.padEnd(6)} ${String(bytesPerToken).padStart(14)} ${mib.toFixed(1).padStart(10)}   ${path.padEnd(8)} ${perMib(times[path].out).toFixed(3).padStart(15)} ${perMib(times[path].in).toFixed(3).padStart(16)}`,
    );
  ratios.push(
    `${dtype}: frames / shared = ${(perMib(times.frames.out) / perMib(times.shared.out)).toFixed(2)}x swap-out, ${(perMib(times.frames.in) / perMib(times.shared.in)).toFixed(2)}x swap-in`,
  );
}
for (const line of ratios) console.log(line);
