/**
 * The rate of the engine's KV path to the host tier, as `seesaw profile` measures it for the
 * planner: swap-outs and swap-ins of the small model's KV geometry through a real kv-store worker
 * thread on the shared-memory path a device worker uses (the store copies between its slots and
 * the device cache's SharedArrayBuffer; KvStoreSwapper over a KvCacheArena). Both sides' pages are
 * touched by an untimed first round: first touches are the planner's separate term.
 */
import { MessageChannel } from 'node:worker_threads';
import { hostKvLayoutFor, slotBytes, spawnKvStoreWorker } from '@seesaw/kv-store';
import type { ModelConfig } from '@seesaw/model';
import { connectAndHello, INBOUND_TAGS, type StepBatch, type StepKvSwap } from '@seesaw/protocol';
import { KvStoreSwapper } from './device-kv-store-swap.ts';
import { KvCacheArena } from './kv-cache-arena.ts';
import { openKvStoreLink, regionSharerOf } from './kv-store-link.ts';
import { PagedKvCache } from './paged-kv-cache.ts';

export interface KvStoreCopyRate {
  /** Bytes/s of KV moved (swap-out and swap-in, their mean time), f32. */
  bytesPerSecond: number;
  /** Fixed cost of one step's swap of one small sequence, seconds. */
  latencySeconds: number;
}

const BLOCK_SIZE = 16;
const TOKEN = 'kv-copy-rate';
/** The `small` generated model's KV geometry (12 layers x 4 KV heads x 64), f32. */
const CONFIG = { numLayers: 12, numKvHeads: 4, headDim: 64 } as ModelConfig;

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

export async function measureKvStoreCopyRate(quick: boolean): Promise<KvStoreCopyRate> {
  const [numSeqs, numTokens] = quick ? [4, 128] : [8, 256];
  const rounds = quick ? 3 : 5;
  const blocksPerSeq = numTokens / BLOCK_SIZE;
  const layout = hostKvLayoutFor(CONFIG, BLOCK_SIZE, 'f32');
  const store = spawnKvStoreWorker(
    {
      name: 'profile kv-store',
      token: TOKEN,
      layout,
      capacityBytes: numSeqs * blocksPerSeq * slotBytes(layout),
      isLogged: false,
    },
    { accept: INBOUND_TAGS.kvStoreToCoordinator },
  );
  try {
    await connectAndHello(store.endpoint, {
      role: 'coordinator',
      name: 'profile',
      token: TOKEN,
      timeoutMs: 60_000,
    });
    const { port1, port2 } = new MessageChannel();
    store.sendLinkPort(port2);
    const link = await openKvStoreLink(port1, { deviceName: 'profile', token: TOKEN });
    const cache = new PagedKvCache(CONFIG, 2 * numSeqs * blocksPerSeq, BLOCK_SIZE, 'f32', new KvCacheArena());
    for (const array of [...cache.keys, ...cache.values]) array.fill(1);
    const all = { start: 0, end: CONFIG.numLayers };
    const heads = { start: 0, end: CONFIG.numKvHeads };
    const swapper = new KvStoreSwapper(link, cache, all, heads, regionSharerOf(link));
    if (!(await swapper.sharing)) throw new Error('the kv-store did not take the shared-memory path');
    const swaps = (seqs: number, tokens: number, home: number): StepKvSwap[] =>
      Array.from({ length: seqs }, (_, s) => ({
        seqId: s,
        numTokens: tokens,
        blockIds: Array.from(
          { length: tokens / BLOCK_SIZE },
          (_, b) => (home * numSeqs + s) * blocksPerSeq + b,
        ),
        slotIds: Array.from({ length: tokens / BLOCK_SIZE }, (_, b) => s * blocksPerSeq + b),
      }));
    const step = (lists: Partial<StepBatch>): StepBatch => ({
      stepId: 0,
      addedSeqs: [],
      releasedSeqIds: [],
      seqs: [],
      ...lists,
    });
    /** Median seconds of a swap-out then swap-in round trip of `seqs` x `tokens`, per direction. */
    const roundTrip = async (seqs: number, tokens: number): Promise<number> => {
      const times: number[] = [];
      for (let round = 0; round <= rounds; round++) {
        const start = performance.now();
        await swapper.apply(step({ swapOuts: swaps(seqs, tokens, round % 2) }));
        await swapper.apply(step({ swapIns: swaps(seqs, tokens, 1 - (round % 2)) }));
        if (round > 0) times.push((performance.now() - start) / 2000);
      }
      return median(times);
    };
    const large = await roundTrip(numSeqs, numTokens);
    const small = await roundTrip(1, BLOCK_SIZE);
    const bytesPerToken = CONFIG.numLayers * 2 * CONFIG.numKvHeads * CONFIG.headDim * 4;
    const [smallBytes, largeBytes] = [BLOCK_SIZE * bytesPerToken, numSeqs * numTokens * bytesPerToken];
    const slope = (large - small) / (largeBytes - smallBytes);
    const bytesPerSecond = slope > 0 ? 1 / slope : largeBytes / large;
    swapper.close('profile done');
    return { bytesPerSecond, latencySeconds: Math.max(0, small - smallBytes / bytesPerSecond) };
  } finally {
    store.endpoint.close('profile done');
    await store.exited;
  }
}
