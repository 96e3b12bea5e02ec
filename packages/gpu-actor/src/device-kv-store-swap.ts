/**
 * A device worker's swaps through the host's kv-store actor (a local cluster's host KV tier).
 * Each rank moves exactly its own box: its pipeline stage's layers x its TP rank's KV heads, so
 * the ranks of a replica together move every layer and head of a sequence, each over its own
 * link, without talking to each other.
 *
 * Slot ids: the coordinator's scheduler allots them and they ride in every kvPut / kvGet
 * (KvSliceAddress.slotIds), so the store keeps no allocator of its own for device traffic and
 * no rank needs to mirror anyone's accounting. A swap-out is never released on the store: the
 * scheduler simply hands the slots out again, and the next put overwrites them.
 *
 * Ordering: a rank runs its steps in order and each link delivers in order, so a swap-in reads
 * what this rank's own earlier swap-out put. Puts are awaited before the step's compute (the
 * swapped-out blocks may be overwritten by it), and gets are scattered before it.
 *
 * Tiered KV (the seesaw engine): write-backs post one layer at a time as the forward pass
 * produces it (StepKvWriteBacks, overlapped with the next layer's compute), and prefetches are
 * gets whose scatter lands whenever the data arrives, awaited only by a later step that touches
 * the sequence (KvPrefetchTable). Both are ordered after this step's swap-outs on the link, and
 * the store serves each link's requests in order, so a get never overtakes an earlier put.
 *
 * Shared memory (a kv-store thread of this host): the cache's bytes are a SharedArrayBuffer
 * (KvCacheArena), shared with the store once (shareCache, again after each re-shard) and then
 * swaps name blocks and slots only: kvCopyOut / kvCopyIn, the store thread copying between its
 * slots and the blocks, one copy per direction, no frame of KV. A store that cannot see the
 * region (a relayed link to another host) refuses the share, and this device keeps the frames.
 * Ordering on that path, since the store now touches the blocks themselves:
 * - Copy out (swap-out, write-back): a block must not change before the store says it is
 *   copied. Swap-outs are awaited before the step's compute. A write-back of layer l is posted
 *   once the forward pass has written layer l, which no later layer of the step writes; the last
 *   stage awaits the acknowledgements before it answers (the scheduler frees or reuses blocks
 *   only after the answer), and an earlier stage, which answers nothing, waits for its earlier
 *   steps' copies before its next compute (waitForCopiesOut), since that step may write blocks
 *   the scheduler has handed out again.
 * - Copy in (swap-in, prefetch): the store writes the blocks while this thread computes other
 *   sequences; no step reads, frees or copies out those blocks before kvCopyDone (swap-ins are
 *   awaited before compute, prefetches through KvPrefetchTable, exactly as their frames' scatter).
 * - Slots: a copy in is posted after every earlier copy out on the same link and the store serves
 *   a link in order, so it reads what this device wrote; the scheduler names a slot in a prefetch
 *   only after the step that wrote it back was answered, and a re-shard flushes before switching.
 */

import type { Range, StepBatch, StepKvSwap, Tensor } from '@seesaw/protocol';
import { KvPrefetchTable, type PrefetchSpan, type PrefetchWait } from './kv-prefetch-table.ts';
import type { KvStoreLinkEndpoint, RegionSharer } from './kv-store-link.ts';
import { KvSwapRequests } from './kv-swap-requests.ts';
import type { KvTouchAhead } from './kv-touch-ahead.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import type { KvBlockCopier } from './step-device.ts';
import { checkKvSwap, StepKvWriteBacks, type WriteBackTimings } from './step-kv-write-backs.ts';
import { gatherSwapKv, scatterSwapKv } from './swap-kv-copy.ts';

/** A step's write-backs as the step runner drives them: the forward pass's per-layer hook, then finish(). */
export interface StepWriteBacks {
  readonly onLayerKvWritten: (layer: number) => void;
  finish(): Promise<WriteBackTimings>;
}

export class KvStoreSwapper {
  /** This rank's requests to the store. */
  private readonly store: KvSwapRequests;
  private readonly prefetches = new KvPrefetchTable();
  /** Puts posted and not yet settled (swap-outs and write-backs), for flush(). */
  private readonly outstandingPuts = new Set<Promise<unknown>>();
  /** Set once the store has a view of this cache: swaps are then kvCopyOut / kvCopyIn. */
  private isShared = false;
  /**
   * Settles with whether the store took the shared cache (false at once without a sharer or a
   * shareable cache). Swaps posted before it settles go as frames, which is equally correct.
   */
  readonly sharing: Promise<boolean>;

  /**
   * `layers` and `kvHeads` are this shard's global ranges; the cache holds them as local
   * layers 0.. and heads 0.. . A cache off the host comes as its block copier: swaps only.
   * With `touchAhead` (a Seesaw device), every step's write-backs also touch as many of the other
   * layout's blocks as they write back, so its prefetches land in touched pages (kv-touch-ahead.ts).
   */
  constructor(
    link: KvStoreLinkEndpoint,
    private readonly cache: PagedKvCache | KvBlockCopier,
    private readonly layers: Range,
    kvHeads: Range,
    shareRegion?: RegionSharer,
    private readonly touchAhead?: KvTouchAhead,
  ) {
    this.store = new KvSwapRequests(link, cache, layers, kvHeads);
    this.sharing = shareRegion ? this.shareCache(shareRegion) : Promise.resolve(false);
  }

  /** Whether swaps go by shared-memory copies (true) or frames (false) now. */
  get isSharedPath(): boolean {
    return this.isShared;
  }

  /** Offers the cache to the store; if it takes it, swaps are copies from then on. */
  private async shareCache(shareRegion: RegionSharer): Promise<boolean> {
    const isTaken = await this.store.shareCache(shareRegion);
    this.isShared = isTaken;
    return isTaken;
  }

  /** Swap-outs first (their blocks may be reused by this step), then swap-ins; throws on any failure. */
  async apply(step: StepBatch): Promise<void> {
    const swapOuts = step.swapOuts ?? [];
    const swapIns = step.swapIns ?? [];
    await Promise.all(swapOuts.map((swap) => this.swapOut(swap)));
    await Promise.all(swapIns.map((swap) => this.swapIn(swap, 'swap-in')));
  }

  /**
   * What a step does before its compute: apply() its swaps, then issue its prefetches, which land
   * during the compute. The prefetches go to the store only once the swaps are done, as the store
   * copies in arrival order: a decode phase's first step swaps a quarter of its batch in and
   * prefetches the rest, and prefetches posted first made that step wait for all of them (the
   * whole batch's KV exposed). Rejects with "KV swap failed: ..." or, for a malformed prefetch
   * (none issued), "tiered KV failed: ...".
   */
  async applyThenPrefetch(step: StepBatch): Promise<void> {
    const failure = (what: string, error: unknown) =>
      new Error(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
    if (step.swapOuts?.length || step.swapIns?.length) {
      try {
        await this.apply(step);
      } catch (error) {
        throw failure('KV swap', error);
      }
    }
    try {
      if (step.prefetches?.length) this.startPrefetches(step);
    } catch (error) {
      throw failure('tiered KV', error);
    }
  }

  /**
   * Issues the step's prefetches (the data lands in its blocks whenever the store has it there).
   * Call after apply() has posted the step's swap-outs: a swapped-out block may be a prefetch's
   * target. Throws (nothing issued) on a malformed prefetch.
   */
  startPrefetches(step: StepBatch): void {
    const prefetches = step.prefetches ?? [];
    for (const swap of prefetches) checkKvSwap(swap, this.cache, 'prefetch');
    for (const swap of prefetches) this.prefetches.start(swap.seqId, () => this.swapIn(swap, 'prefetch'));
  }

  /**
   * Waits for the prefetches of `seqIds` (see seqIdsTouchedBy: a step must not read, free or
   * copy out blocks whose data is still on its way) and forgets them; rejects with a failed
   * prefetch's error.
   */
  waitForPrefetches(seqIds: Iterable<number>): Promise<PrefetchWait> {
    return this.prefetches.wait(seqIds);
  }

  /**
   * On the shared path, waits until the store has copied out everything earlier steps named
   * (an earlier pipeline stage does not await its write-backs; its next step may write blocks
   * the scheduler has handed out again). Failures are left to the steps that posted them.
   */
  async waitForCopiesOut(): Promise<void> {
    if (this.isShared && this.outstandingPuts.size > 0) await Promise.allSettled([...this.outstandingPuts]);
  }

  /** Summed issue -> done time of prefetches completed since the last call, ms. */
  takeCompletedPrefetchMs(): number {
    return this.prefetches.takeCompletedMs();
  }

  /** Issue -> landed spans (performance.now()) of prefetches completed since the last call. */
  takeCompletedPrefetches(): PrefetchSpan[] {
    return this.prefetches.takeCompleted();
  }

  /**
   * The step's write-backs, posted layer by layer through the forward pass's hook (see
   * StepKvWriteBacks); undefined when it has none. Throws on a malformed write-back.
   */
  startWriteBacks(step: StepBatch): StepWriteBacks | undefined {
    const swaps = step.kvWriteBacks ?? [];
    if (swaps.length === 0) return undefined;
    const layersOf = (layer: number) => ({
      start: this.layers.start + layer,
      end: this.layers.start + layer + 1,
    });
    const putLayer = (swap: StepKvSwap, layer: number, tensor: Tensor) =>
      this.trackPut(this.store.request('write-back', swap, 'kvPut', tensor, layersOf(layer))).then(
        () => undefined,
      );
    if (!(this.cache instanceof PagedKvCache)) {
      return this.cache.startLayerWriteBacks
        ? this.cache.startLayerWriteBacks(swaps, putLayer)
        : this.wholeWriteBacks(this.cache, swaps);
    }
    const copy = (swap: StepKvSwap, layer: number) =>
      this.trackPut(this.store.copy('write-back', 'kvCopyOut', swap, layersOf(layer)));
    const writeBacks = this.isShared
      ? new StepKvWriteBacks(this.cache, swaps, { copy })
      : new StepKvWriteBacks(this.cache, swaps, putLayer);
    const touchAhead = this.touchAhead;
    if (!touchAhead) return writeBacks;
    // A prefetched sequence gets the blocks of its tokens and of the next one, which it decodes.
    const { blockSize } = this.cache.layout;
    const numBlocks = swaps.reduce((sum, swap) => sum + Math.ceil((swap.numTokens + 1) / blockSize), 0);
    return {
      onLayerKvWritten: writeBacks.onLayerKvWritten,
      // After the forward pass has posted every layer: the store copies out while this thread touches.
      finish: () => {
        touchAhead.touchNext(numBlocks);
        return writeBacks.finish();
      },
    };
  }

  /**
   * Write-backs of a cache off the host whose copier has no layer-by-layer path: every layer of
   * each sequence at once after the compute. finish() encodes the copies out synchronously,
   * before any later step's compute can reuse the blocks.
   */
  private wholeWriteBacks(copier: KvBlockCopier, swaps: readonly StepKvSwap[]): StepWriteBacks {
    for (const swap of swaps) checkKvSwap(swap, copier, 'write-back');
    return {
      onLayerKvWritten: () => {},
      finish: async () => {
        const startMs = performance.now();
        await Promise.all(
          swaps.map(async (swap) => {
            const tensor = await copier.gather(swap);
            await this.trackPut(this.store.request('write-back', swap, 'kvPut', tensor));
          }),
        );
        const ms = performance.now() - startMs;
        return { writeBackMs: ms, writeBackWaitMs: ms };
      },
    };
  }

  /**
   * Resolves once every put this device posted has been answered and every prefetch has landed
   * (or failed): nothing is in flight between this device's cache and the store. A re-shard
   * calls it before dropping the cache. Failures are not raised here; their steps report them.
   */
  async flush(): Promise<void> {
    while (this.outstandingPuts.size > 0 || this.prefetches.size > 0) {
      await Promise.allSettled([...this.outstandingPuts]);
      await this.prefetches.settled();
      if (this.outstandingPuts.size === 0) return;
    }
  }

  close(reason: string): void {
    this.store.close(reason);
  }

  private trackPut<T>(put: Promise<T>): Promise<T> {
    this.outstandingPuts.add(put);
    const forget = () => {
      this.outstandingPuts.delete(put);
    };
    put.then(forget, forget);
    return put;
  }

  private async swapOut(swap: StepKvSwap): Promise<void> {
    checkKvSwap(swap, this.cache, 'swap-out');
    if (this.isShared) {
      await this.trackPut(this.store.copy('swap-out', 'kvCopyOut', swap));
      return;
    }
    const tensor =
      this.cache instanceof PagedKvCache ? gatherSwapKv(this.cache, swap) : await this.cache.gather(swap);
    await this.trackPut(this.store.request('swap-out', swap, 'kvPut', tensor));
  }

  /** Brings the sequence's KV into its blocks (the store's copy, or a frame scattered here); resolves with the bytes moved. */
  private async swapIn(swap: StepKvSwap, what: 'swap-in' | 'prefetch'): Promise<number> {
    checkKvSwap(swap, this.cache, what);
    if (this.isShared) {
      await this.store.copy(what, 'kvCopyIn', swap);
      return this.store.boxBytes(swap, this.layers);
    }
    const slice = await this.store.fetch(swap, what);
    if (this.cache instanceof PagedKvCache) scatterSwapKv(this.cache, swap, slice);
    else this.cache.scatter(swap, slice);
    return slice.data.byteLength;
  }
}
