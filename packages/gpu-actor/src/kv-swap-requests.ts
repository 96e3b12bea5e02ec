/**
 * One device rank's requests to its host's kv-store for a swap. Each names this rank's box of
 * the sequence (its layers x its KV heads, the scheduler's slot ids), as a frame of KV (kvPut /
 * kvGet) or, once the store has a view of the cache (shareCache), as a copy between the cache's
 * blocks and the slots (kvCopyOut / kvCopyIn). KvStoreSwapper decides which and when.
 */

import type { Range, StepKvSwap, Tensor } from '@seesaw/protocol';
import type { KvStoreLinkEndpoint, RegionSharer } from './kv-store-link.ts';
import { type KvRequest, KvStoreRequests } from './kv-store-requests.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import type { KvBlockCopier } from './step-device.ts';

export class KvSwapRequests {
  private readonly requests: KvStoreRequests;

  /** `layers` and `kvHeads` are this shard's global ranges, as KvStoreSwapper's. */
  constructor(
    link: KvStoreLinkEndpoint,
    private readonly cache: PagedKvCache | KvBlockCopier,
    private readonly layers: Range,
    private readonly kvHeads: Range,
  ) {
    this.requests = new KvStoreRequests(link);
  }

  /** Offers the cache's SharedArrayBuffer to the store; resolves with whether it took it. */
  async shareCache(shareRegion: RegionSharer): Promise<boolean> {
    const cache = this.cache;
    if (!(cache instanceof PagedKvCache)) return false;
    const buffer = cache.keys[0]?.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) return false;
    if (cache.keys.some((k) => k.buffer !== buffer) || cache.values.some((v) => v.buffer !== buffer))
      return false;
    const { numKvHeads, headDim, blockSize } = cache.layout;
    if (numKvHeads !== this.kvHeads.end - this.kvHeads.start) return false;
    const region = shareRegion(buffer);
    const isTaken = await this.requests
      .send('kvCacheShare', {
        tag: 'kvCacheShare',
        requestId: 0,
        region,
        layers: { ...this.layers },
        heads: { ...this.kvHeads },
        dtype: cache.dtype,
        numBlocks: cache.numBlocks,
        blockSize,
        headDim,
        keyOffsets: cache.keys.map((k) => k.byteOffset),
        valueOffsets: cache.values.map((v) => v.byteOffset),
      })
      .then(
        () => true,
        () => false, // refused (another host's store) or the link failed: frames, as before
      );
    return isTaken;
  }

  close(reason: string): void {
    this.requests.close(reason);
  }

  /** The KV bytes of the swap's box over `layers`: what a copy moved. */
  boxBytes(swap: StepKvSwap, layers: Range): number {
    const { headDim } = this.cache.layout;
    const elementBytes = (this.cache.layout.dtype ?? 'f32') === 'f32' ? 4 : 2;
    const numHeads = this.kvHeads.end - this.kvHeads.start;
    return (layers.end - layers.start) * 2 * numHeads * swap.numTokens * headDim * elementBytes;
  }

  /** Gets the swap's KV as a frame; throws unless it is this rank's box in the cache's dtype. */
  async fetch(swap: StepKvSwap, what: KvSwapKind): Promise<Tensor> {
    const tensor = await this.request(what, swap, 'kvGet');
    const expected = [
      this.layers.end - this.layers.start,
      2,
      this.kvHeads.end - this.kvHeads.start,
      swap.numTokens,
      this.cache.layout.headDim,
    ];
    if (!tensor) throw new Error(`${what} of sequence ${swap.seqId}: kv-store sent no tensor`);
    const dtype = this.cache.layout.dtype ?? 'f32';
    const isExpected =
      tensor.dtype === dtype &&
      tensor.shape.length === 5 &&
      tensor.shape.every((dim, i) => dim === expected[i]);
    if (!isExpected)
      throw new Error(
        `${what} of sequence ${swap.seqId}: kv-store sent ${tensor.dtype} [${tensor.shape}], expected ${dtype} [${expected}]`,
      );
    return tensor;
  }

  /** Where a swap's KV lies on the store: its sequence, this rank's box of it, and its slots. */
  private address(swap: StepKvSwap, layers: Range) {
    return {
      seqId: swap.seqId,
      layers: { ...layers },
      heads: { ...this.kvHeads },
      tokens: { start: 0, end: swap.numTokens },
      slotIds: [...swap.slotIds],
    };
  }

  /** The store's copy between this shared cache's blocks and the swap's slots; resolves when done. */
  copy(what: KvSwapKind, tag: 'kvCopyOut' | 'kvCopyIn', swap: StepKvSwap, layers: Range = this.layers) {
    const message: KvRequest = {
      tag,
      requestId: 0,
      ...this.address(swap, layers),
      blockIds: [...swap.blockIds],
      ...prefetchMark(what),
    };
    return this.requests.send(`${what} of sequence ${swap.seqId}`, message).then(() => undefined);
  }

  /** A kvPut (with `tensor`) or kvGet of the swap's box; resolves with the answer's tensor, if any. */
  request(
    what: KvSwapKind,
    swap: StepKvSwap,
    tag: 'kvPut' | 'kvGet',
    tensor?: Tensor,
    layers: Range = this.layers,
  ): Promise<Tensor | undefined> {
    const message: KvRequest = {
      tag,
      requestId: 0,
      ...this.address(swap, layers),
      ...(tag === 'kvGet' ? prefetchMark(what) : {}),
    };
    return this.requests.send(`${what} of sequence ${swap.seqId}`, message, tensor);
  }
}

/** What a swap is for; it names the request in errors, and a prefetch is marked for the store. */
export type KvSwapKind = 'swap-out' | 'swap-in' | 'write-back' | 'prefetch';

/** A prefetch's device awaits it only at a later step: the store may serve other devices first. */
function prefetchMark(what: KvSwapKind): { isPrefetch?: true } {
  return what === 'prefetch' ? { isPrefetch: true } : {};
}
