import type { KvDType } from '@seesaw/kernels';
import type { HostKvStore } from '@seesaw/kv-store';
import type { ModelConfig } from '@seesaw/model';
import type { StepBatch, StepKvSwap } from '@seesaw/protocol';
import type { PagedKvCache } from './paged-kv-cache.ts';
import { checkKvSwap, StepKvWriteBacks } from './step-kv-write-backs.ts';
import { gatherSwapKv, scatterSwapKv } from './swap-kv-copy.ts';

/**
 * Executes a step's swaps between a device's paged KV cache and an in-process host store
 * (same host, same thread; device workers in a cluster go through the kv-store actor with
 * explicit slot ids instead, see device-kv-store-swap.ts). The device holds the whole model,
 * so a sequence's box is every layer and KV head.
 *
 * Slot ids: the coordinator's HostKvAllocator picks them; the store keeps its own allocator
 * of the same size, driven in the same order (reserve on swap-out, release on swap-in), so
 * it hands out the same ids. A mismatch means the two accountings diverged (e.g. a store
 * shared with another client) and fails the step rather than write the wrong slots.
 *
 * Tiered KV (kvWriteBacks, prefetches) addresses the step's slot ids directly instead, as the
 * kv-store actor does: the seesaw scheduler owns that accounting and the store's allocator is
 * not involved. A store used that way must not also serve swapOuts (its allocator would hand
 * out slots the scheduler has given to write-backs).
 */
export class HostKvSwapper {
  constructor(
    private readonly store: HostKvStore,
    private readonly cache: PagedKvCache,
  ) {}

  /** Throws unless the store's slots mirror this cache's blocks for `config` (same dtype: no conversion on the way). */
  static checkStore(store: HostKvStore, config: ModelConfig, blockSize: number, kvDtype: KvDType): void {
    const { numLayers, numKvHeads, headDim, tokensPerSlot, dtype } = store.layout;
    const expected = `${config.numLayers} layers, ${config.numKvHeads} KV heads, head dim ${config.headDim}, ${blockSize}-token ${kvDtype} slots`;
    if (
      numLayers !== config.numLayers ||
      numKvHeads !== config.numKvHeads ||
      headDim !== config.headDim ||
      tokensPerSlot !== blockSize ||
      dtype !== kvDtype
    ) {
      throw new RangeError(
        `host KV store holds ${numLayers} layers, ${numKvHeads} KV heads, head dim ${headDim}, ${tokensPerSlot}-token ${dtype} slots; device needs ${expected}`,
      );
    }
  }

  /** Swap-outs first (their blocks may be reused by this step), then swap-ins. */
  apply(step: StepBatch): void {
    for (const swap of step.swapOuts ?? []) this.swapOut(swap);
    for (const swap of step.swapIns ?? []) this.swapIn(swap);
  }

  /**
   * Copies the step's prefetches in at once: same thread, so there is nothing to overlap, and
   * their blocks are not used by this step.
   */
  prefetch(step: StepBatch): void {
    const prefetches = step.prefetches ?? [];
    for (const swap of prefetches) checkKvSwap(swap, this.cache, 'prefetch');
    for (const swap of prefetches) {
      const got = this.store.get({ ...this.boxOf(swap), slotIds: swap.slotIds });
      if (!got.ok) throw new Error(`prefetch of sequence ${swap.seqId}: ${got.reason}`);
      scatterSwapKv(this.cache, swap, got.tensor);
    }
  }

  /** The step's write-backs, stored layer by layer from the forward pass's hook; undefined without any. */
  startWriteBacks(step: StepBatch): StepKvWriteBacks | undefined {
    const swaps = step.kvWriteBacks ?? [];
    if (swaps.length === 0) return undefined;
    return new StepKvWriteBacks(this.cache, swaps, (swap, layer, tensor) => {
      const box = { ...this.boxOf(swap), layers: { start: layer, end: layer + 1 }, slotIds: swap.slotIds };
      const stored = this.store.put(box, tensor);
      return stored.ok
        ? Promise.resolve()
        : Promise.reject(new Error(`write-back of sequence ${swap.seqId}: ${stored.reason}`));
    });
  }

  private swapOut(swap: StepKvSwap): void {
    this.checkShape(swap, 'swap-out');
    const reserved = this.store.reserve(swap.seqId, swap.slotIds.length);
    if (!reserved.ok) throw new Error(`swap-out of sequence ${swap.seqId}: ${reserved.reason}`);
    if (reserved.slotIds.some((id, i) => id !== swap.slotIds[i])) {
      this.store.release(swap.seqId, reserved.slotIds);
      throw new Error(
        `swap-out of sequence ${swap.seqId}: host store gave slots [${reserved.slotIds}], coordinator planned [${swap.slotIds}]`,
      );
    }
    const tensor = gatherSwapKv(this.cache, swap);
    const stored = this.store.put(this.boxOf(swap), tensor);
    if (!stored.ok) {
      this.store.release(swap.seqId);
      throw new Error(`swap-out of sequence ${swap.seqId}: ${stored.reason}`);
    }
  }

  private swapIn(swap: StepKvSwap): void {
    this.checkShape(swap, 'swap-in');
    const held = this.store.allocator.slotsOf(swap.seqId);
    if (held.length !== swap.slotIds.length || held.some((id, i) => id !== swap.slotIds[i]))
      throw new Error(
        `swap-in of sequence ${swap.seqId}: store holds slots [${held}], step names [${swap.slotIds}]`,
      );
    const got = this.store.get(this.boxOf(swap));
    if (!got.ok) throw new Error(`swap-in of sequence ${swap.seqId}: ${got.reason}`);
    scatterSwapKv(this.cache, swap, got.tensor);
    const released = this.store.release(swap.seqId);
    if (!released.ok) throw new Error(`swap-in of sequence ${swap.seqId}: ${released.reason}`);
  }

  private checkShape(swap: StepKvSwap, what: string): void {
    const numBlocks = Math.ceil(swap.numTokens / this.cache.layout.blockSize);
    if (!(swap.numTokens >= 1) || swap.blockIds.length !== numBlocks || swap.slotIds.length !== numBlocks)
      throw new RangeError(
        `${what} of sequence ${swap.seqId}: ${swap.numTokens} tokens need ${numBlocks} blocks and slots, got ${swap.blockIds.length} and ${swap.slotIds.length}`,
      );
  }

  private boxOf(swap: StepKvSwap) {
    return {
      seqId: swap.seqId,
      layers: { start: 0, end: this.cache.keys.length },
      heads: { start: 0, end: this.cache.layout.numKvHeads },
      tokens: { start: 0, end: swap.numTokens },
    };
  }
}
