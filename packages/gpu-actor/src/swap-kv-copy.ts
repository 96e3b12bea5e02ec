/**
 * One swapped sequence's K/V between its paged-cache blocks (swap.blockIds) and a head-major
 * tensor [layers, 2, kvHeads, swap.numTokens, headDim] f32 over all of the cache's (local)
 * layers and KV heads: what a swap-out stores and a swap-in or prefetch loads.
 */
import { gatherSequenceKv, scatterSequenceKv } from '@seesaw/kv-store';
import type { StepKvSwap, Tensor } from '@seesaw/protocol';
import type { PagedKvCache } from './paged-kv-cache.ts';

/** Copies the sequence's K/V out of its blocks. */
export function gatherSwapKv(cache: PagedKvCache, swap: StepKvSwap): Tensor {
  const heads = { start: 0, end: cache.layout.numKvHeads };
  return gatherSequenceKv(cache.keys, cache.values, swap.blockIds, swap.numTokens, cache.layout, heads);
}

/** Writes `tensor` (as gatherSwapKv returns it) into the sequence's blocks. */
export function scatterSwapKv(cache: PagedKvCache, swap: StepKvSwap, tensor: Tensor): void {
  const heads = { start: 0, end: cache.layout.numKvHeads };
  scatterSequenceKv(cache.keys, cache.values, swap.blockIds, swap.numTokens, cache.layout, heads, tensor);
}
