/**
 * One host's KV region: slot memory behind a HostKvAllocator, addressed per sequence in the
 * head-major layout so a device owning KV heads [a, b) of layers [l0, l1) can put or get
 * exactly that box.
 *
 * Memory: slots live in lazily allocated arenas with a written-bitmap (host-kv-arenas.ts), so a
 * get of anything never put is an error instead of returning a previous owner's bytes.
 *
 * Two ways to address a sequence's slots: by seqId, through this store's own allocator
 * (reserve / release), or with a box's explicit `slotIds`, when another party (the cluster
 * coordinator's scheduler) owns the accounting and several devices write parts of one sequence.
 * Explicit slots are never reserved here; their written bits are only ever set (a slot reused by
 * the authority is simply overwritten), so with them the bitmap catches a get of a slot never
 * put at all, not a stale one.
 */

import type { Tensor, TensorData } from '@seesaw/protocol';
import { HostKvAllocator, type ReleaseResult, type ReserveResult } from './host-kv-allocator.ts';
import { HostKvArenas } from './host-kv-arenas.ts';
import { boxShape, checkRange, type HostKvLayout, type KvSliceBox, slotBytes } from './host-kv-layout.ts';
import type { SharedKvCache } from './shared-kv-cache.ts';

const KV_DTYPES: readonly string[] = ['f32', 'bf16', 'f16'];

export interface HostKvStoreOptions {
  layout: HostKvLayout;
  /** Bytes of KV the host may hold; the store has floor(capacityBytes / slotBytes) slots. */
  capacityBytes: number;
  /** Back the arenas with SharedArrayBuffers (so other threads can be handed views). */
  isShared?: boolean;
}

export type StoreResult = { ok: true } | { ok: false; reason: string };
export type GetResult = { ok: true; tensor: Tensor } | { ok: false; reason: string };

export class HostKvStore {
  readonly layout: HostKvLayout;
  readonly allocator: HostKvAllocator;
  readonly slotBytes: number;
  private readonly arenas: HostKvArenas;

  constructor(options: HostKvStoreOptions) {
    const { layout, capacityBytes } = options;
    for (const key of ['numLayers', 'numKvHeads', 'headDim', 'tokensPerSlot'] as const) {
      if (!Number.isInteger(layout[key]) || layout[key] < 1)
        throw new RangeError(`bad ${key} ${layout[key]}`);
    }
    if (!KV_DTYPES.includes(layout.dtype)) throw new RangeError(`bad KV dtype ${layout.dtype}`);
    if (!Number.isFinite(capacityBytes) || capacityBytes < 0)
      throw new RangeError(`bad capacity ${capacityBytes}`);
    this.layout = { ...layout };
    this.slotBytes = slotBytes(layout);
    this.allocator = HostKvAllocator.forCapacity(capacityBytes, layout.tokensPerSlot, this.slotBytes);
    this.arenas = new HostKvArenas(
      this.layout,
      this.slotBytes,
      this.allocator.numSlots,
      options.isShared ?? false,
    );
  }

  get numSlots(): number {
    return this.allocator.numSlots;
  }

  get numFreeSlots(): number {
    return this.allocator.numFreeSlots;
  }

  /** Bytes of arena memory actually allocated so far. */
  get numResidentBytes(): number {
    return this.arenas.numResidentBytes;
  }

  /** Appends slots to a sequence; the new slots read as unwritten. */
  reserve(seqId: number, numSlots: number): ReserveResult {
    const result = this.allocator.reserve(seqId, numSlots);
    if (result.ok) {
      for (const slotId of result.slotIds) this.arenas.markUnwritten(slotId);
    }
    return result;
  }

  release(seqId: number, slotIds?: readonly number[]): ReleaseResult {
    return this.allocator.release(seqId, slotIds);
  }

  /** Stores `tensor` ([layers, 2, heads, tokens, headDim] of the store's dtype) at `box`. */
  put(box: KvSliceBox, tensor: Tensor): StoreResult {
    const problem = this.checkBox(box) ?? this.checkTensor(box, tensor);
    if (problem) return { ok: false, reason: problem };
    const slots = this.slotsOf(box);
    const arenas = this.arenas.ensure(slots);
    if (typeof arenas === 'string') return { ok: false, reason: arenas };
    this.arenas.copyBox(box, slots, tensor.data, true);
    return { ok: true };
  }

  /** Reads `box` into a new tensor (or into `out`, which must have the box's element count). */
  get(box: KvSliceBox, out?: TensorData): GetResult {
    const badBox = this.checkBox(box);
    if (badBox) return { ok: false, reason: badBox };
    const slots = this.slotsOf(box);
    const unwritten = this.arenas.findUnwritten(box, slots);
    if (unwritten) return { ok: false, reason: unwritten };
    const shape = boxShape(box, this.layout.headDim);
    const length = shape.reduce((a, b) => a * b, 1);
    const isF32 = this.layout.dtype === 'f32';
    const data = out ?? (isF32 ? new Float32Array(length) : new Uint16Array(length));
    if (data.length !== length || data instanceof Float32Array !== isF32)
      return { ok: false, reason: `output buffer must be ${length} ${this.layout.dtype} elements` };
    this.arenas.copyBox(box, slots, data, false);
    return { ok: true, tensor: { dtype: this.layout.dtype, shape, data } };
  }

  /**
   * Copies `box` out of a device's shared KV cache (its blocks `blockIds`, block i holding
   * tokens [i * blockSize, ...)) straight into the slots: the shared-memory swap-out and write-back.
   */
  copyFromCache(box: KvSliceBox, cache: SharedKvCache, blockIds: readonly number[]): StoreResult {
    const problem = this.checkBox(box) ?? this.checkCacheBox(box, cache, blockIds);
    if (problem) return { ok: false, reason: problem };
    const slots = this.slotsOf(box);
    const arenas = this.arenas.ensure(slots);
    if (typeof arenas === 'string') return { ok: false, reason: arenas };
    this.arenas.copyCacheBox(box, slots, cache, blockIds, true);
    return { ok: true };
  }

  /** Copies `box` from the slots straight into the shared cache's blocks: swap-in and prefetch. */
  copyIntoCache(box: KvSliceBox, cache: SharedKvCache, blockIds: readonly number[]): StoreResult {
    const badBox = this.checkBox(box) ?? this.checkCacheBox(box, cache, blockIds);
    if (badBox) return { ok: false, reason: badBox };
    const slots = this.slotsOf(box);
    const unwritten = this.arenas.findUnwritten(box, slots);
    if (unwritten) return { ok: false, reason: unwritten };
    this.arenas.copyCacheBox(box, slots, cache, blockIds, false);
    return { ok: true };
  }

  /** Why `box` cannot move between the slots and `cache`'s blocks `blockIds`. */
  private checkCacheBox(
    box: KvSliceBox,
    cache: SharedKvCache,
    blockIds: readonly number[],
  ): string | undefined {
    if (cache.dtype !== this.layout.dtype)
      return `cache holds ${cache.dtype}, store holds ${this.layout.dtype}`;
    if (cache.headDim !== this.layout.headDim)
      return `cache head dim ${cache.headDim}, store's ${this.layout.headDim}`;
    const inside = (what: string, inner: KvSliceBox['layers'], outer: KvSliceBox['layers']) =>
      inner.start >= outer.start && inner.end <= outer.end
        ? undefined
        : `${what} [${inner.start}, ${inner.end}) are not in the shared cache's [${outer.start}, ${outer.end})`;
    const outside = inside('layers', box.layers, cache.layers) ?? inside('heads', box.heads, cache.heads);
    if (outside) return outside;
    const numBlocks = Math.ceil(box.tokens.end / cache.blockSize);
    if (!Array.isArray(blockIds) || blockIds.length < numBlocks)
      return `${box.tokens.end} tokens need ${numBlocks} blocks, got ${blockIds?.length}`;
    const bad = blockIds.find((id) => !Number.isSafeInteger(id) || id < 0 || id >= cache.numBlocks);
    if (bad !== undefined) return `block ${bad} is not one of the shared cache's ${cache.numBlocks} blocks`;
    return undefined;
  }

  /** Why `box` cannot be addressed now (bad ranges, unknown sequence or slots, past its slots). */
  checkBox(box: KvSliceBox): string | undefined {
    const { numLayers, numKvHeads } = this.layout;
    if (!Number.isSafeInteger(box.seqId) || box.seqId < 0) return `bad seqId ${box.seqId}`;
    let capacity: number;
    if (box.slotIds !== undefined) {
      if (!Array.isArray(box.slotIds) || box.slotIds.length === 0) return 'slotIds must be a non-empty array';
      const bad = box.slotIds.find((id) => !Number.isSafeInteger(id) || id < 0 || id >= this.numSlots);
      if (bad !== undefined) return `slot ${bad} is not one of the store's ${this.numSlots} slots`;
      if (new Set(box.slotIds).size !== box.slotIds.length) return `slotIds [${box.slotIds}] repeat a slot`;
      capacity = box.slotIds.length * this.layout.tokensPerSlot;
    } else {
      capacity = this.allocator.tokenCapacityOf(box.seqId);
      if (capacity === 0) return `unknown sequence ${box.seqId} (no slots reserved)`;
    }
    return (
      checkRange('layers', box.layers, numLayers) ??
      checkRange('heads', box.heads, numKvHeads) ??
      checkRange(`sequence ${box.seqId} tokens`, box.tokens, capacity)
    );
  }

  private slotsOf(box: KvSliceBox): readonly number[] {
    return box.slotIds ?? this.allocator.slotsOf(box.seqId);
  }

  private checkTensor(box: KvSliceBox, tensor: Tensor): string | undefined {
    if (!tensor || !Array.isArray(tensor.shape) || !ArrayBuffer.isView(tensor.data)) return 'not a tensor';
    const expected = boxShape(box, this.layout.headDim);
    if (tensor.dtype !== this.layout.dtype)
      return `tensor dtype ${tensor.dtype}, store holds ${this.layout.dtype}`;
    if (tensor.shape.length !== 5 || tensor.shape.some((dim, i) => dim !== expected[i]))
      return `tensor shape [${tensor.shape}], box needs [${expected}]`;
    const length = expected.reduce((a, b) => a * b, 1);
    const isRightKind =
      this.layout.dtype === 'f32' ? tensor.data instanceof Float32Array : tensor.data instanceof Uint16Array;
    if (!isRightKind || tensor.data.length !== length)
      return `tensor data is not ${length} ${tensor.dtype} elements`;
    return undefined;
  }
}
