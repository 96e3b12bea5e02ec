/**
 * One swapped sequence's K/V between its paged-cache blocks (swap.blockIds) and a head-major
 * tensor [layers, 2, heads.end - heads.start, swap.numTokens, headDim] f32, over all of the
 * cache's (local) layers: what a swap-out stores and a swap-in or prefetch loads.
 */
import { gatherSequenceKv, scatterSequenceKv } from '@seesaw/kv-store';
import type { Range, StepKvSwap, Tensor } from '@seesaw/protocol';
import type { PagedKvCache } from './paged-kv-cache.ts';

/** Copies the sequence's K/V of KV heads `heads` (cache-local) out of its blocks. */
export function gatherSwapKv(cache: PagedKvCache, swap: StepKvSwap, heads: Range): Tensor {
  return gatherSequenceKv(cache.keys, cache.values, swap.blockIds, swap.numTokens, cache.layout, heads);
}

/** Writes `tensor` (as gatherSwapKv returns it) into the sequence's blocks. */
export function scatterSwapKv(cache: PagedKvCache, swap: StepKvSwap, heads: Range, tensor: Tensor): void {
  scatterSequenceKv(cache.keys, cache.values, swap.blockIds, swap.numTokens, cache.layout, heads, tensor);
}
