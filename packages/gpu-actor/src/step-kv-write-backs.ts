/**
 * One step's KV write-backs (StepBatch.kvWriteBacks), layer by layer: as soon as the forward
 * pass has written layer l's K/V of the step into the paged cache, each listed sequence's
 * positions [0, numTokens) of that layer are gathered (synchronously: the cache layer is final
 * for this step, and the blocks may be handed out again once the step answers) and handed to
 * `put`, which posts them without waiting. The transfer then overlaps layer l+1's compute; the
 * caller awaits `finish()` for the acknowledgements.
 */
import { gatherSequenceKv } from '@seesaw/kv-store';
import type { StepKvSwap, Tensor } from '@seesaw/protocol';
import type { PagedKvCache } from './paged-kv-cache.ts';

/**
 * Posts one layer of one sequence: `tensor` is [1, 2, heads, numTokens, headDim] (the cache dtype) of the
 * cache's local layer `layer`; resolves when the store has acknowledged it.
 */
export type LayerKvPut = (swap: StepKvSwap, layer: number, tensor: Tensor) => Promise<void>;

/**
 * Has the store copy one layer of one sequence straight out of the (shared) cache's blocks;
 * resolves when the copy is done. Nothing is gathered on this thread: the blocks themselves are
 * the source, so they must stay untouched until the copy is acknowledged (see KvStoreSwapper).
 */
export type LayerKvCopy = (swap: StepKvSwap, layer: number) => Promise<void>;

export interface WriteBackTimings {
  /** First post -> last acknowledgement, ms (0 without write-backs). */
  writeBackMs: number;
  /** Time finish() waited for acknowledgements: from its call to the last one, ms. */
  writeBackWaitMs: number;
}

/** Throws a RangeError unless `swap` names exactly the blocks and slots its tokens need, inside the cache. */
export function checkKvSwap(
  swap: StepKvSwap,
  cache: Pick<PagedKvCache, 'layout' | 'numBlocks'>,
  what: string,
): void {
  const numBlocks = Math.ceil(swap.numTokens / cache.layout.blockSize);
  if (!(swap.numTokens >= 1) || swap.blockIds.length !== numBlocks || swap.slotIds.length !== numBlocks)
    throw new RangeError(
      `${what} of sequence ${swap.seqId}: ${swap.numTokens} tokens need ${numBlocks} blocks and slots, got ${swap.blockIds.length} and ${swap.slotIds.length}`,
    );
  const bad = swap.blockIds.find((id) => !Number.isInteger(id) || id < 0 || id >= cache.numBlocks);
  if (bad !== undefined)
    throw new RangeError(
      `${what} of sequence ${swap.seqId}: block ${bad} is outside the cache's ${cache.numBlocks} blocks`,
    );
}

export class StepKvWriteBacks {
  private readonly isLayerPosted: boolean[];
  private readonly acks: Promise<void>[] = [];
  private firstPostMs: number | undefined;
  private lastAckMs: number | undefined;
  /** Settles (never rejects) once every posted put has settled. */
  private settledAll: Promise<void> = Promise.resolve();

  private readonly post: LayerKvCopy;

  /**
   * Checks every write-back up front, so the per-layer hook cannot fail halfway through a forward
   * pass. `put` gets each layer gathered into a fresh tensor (the frame path); `{ copy }` only
   * names the layer, for a store that reads the shared cache itself.
   */
  constructor(
    private readonly cache: PagedKvCache,
    private readonly swaps: readonly StepKvSwap[],
    put: LayerKvPut | { copy: LayerKvCopy },
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const swap of swaps) checkKvSwap(swap, cache, 'write-back');
    this.isLayerPosted = new Array<boolean>(cache.keys.length).fill(false);
    this.post =
      typeof put === 'function' ? (swap, layer) => put(swap, layer, this.gather(swap, layer)) : put.copy;
  }

  /** Layer `layer` of the sequence's blocks, [1, 2, heads, numTokens, headDim], in a fresh tensor. */
  private gather(swap: StepKvSwap, layer: number): Tensor {
    const heads = { start: 0, end: this.cache.layout.numKvHeads };
    return gatherSequenceKv(
      [this.cache.keys[layer]!],
      [this.cache.values[layer]!],
      swap.blockIds,
      swap.numTokens,
      this.cache.layout,
      heads,
    );
  }

  /** The forward pass's hook: posts every sequence's K/V of cache layer `layer` (local index). */
  readonly onLayerKvWritten = (layer: number): void => {
    if (this.isLayerPosted[layer] || this.swaps.length === 0) return;
    this.isLayerPosted[layer] = true;
    this.firstPostMs ??= this.now();
    for (const swap of this.swaps) {
      const ack = this.post(swap, layer).then(() => {
        const at = this.now();
        this.lastAckMs = Math.max(this.lastAckMs ?? at, at);
      });
      this.acks.push(ack);
      const before = this.settledAll;
      this.settledAll = ack.then(
        () => before,
        () => before,
      );
    }
  };

  /** Every put posted so far settled (failed ones too); for flushing before a re-shard. */
  settled(): Promise<void> {
    return this.settledAll;
  }

  /**
   * Posts the layers the forward pass did not reach (a step without tokens never runs a layer),
   * then waits for every acknowledgement; rejects with the first failure.
   */
  async finish(): Promise<WriteBackTimings> {
    for (let layer = 0; layer < this.isLayerPosted.length; layer++) this.onLayerKvWritten(layer);
    const waitStart = this.now();
    const outcomes = await Promise.allSettled(this.acks);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
    // Until the last acknowledgement arrived, not until this continuation ran: a thread preempted
    // in between (two cores, three threads) would count the OS's delay as KV wait, and the wait
    // could then exceed writeBackMs, which ends at the same acknowledgement.
    const writeBackWaitMs = Math.max(0, (this.lastAckMs ?? waitStart) - waitStart);
    const writeBackMs =
      this.firstPostMs === undefined
        ? 0
        : Math.max(0, (this.lastAckMs ?? this.firstPostMs) - this.firstPostMs);
    return { writeBackMs, writeBackWaitMs };
  }
}
