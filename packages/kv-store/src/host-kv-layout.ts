/**
 * Shapes shared by the host store and its clients: what one slot holds and how a KV slice
 * (a box of layers x heads x tokens of one sequence) is addressed and laid out.
 */

import type { ModelConfig } from '@seesaw/model';
import { DTYPE_BYTES, type Range } from '@seesaw/protocol';

/** Element types the store can hold (the protocol's activation dtypes). */
export type KvDType = 'f32' | 'bf16' | 'f16';

export interface HostKvLayout {
  /** Decoder layers the host stores (all of the model's). */
  numLayers: number;
  /** KV heads the host stores (all of the model's). */
  numKvHeads: number;
  headDim: number;
  /** Tokens per slot: the allocation chunk, normally the device's block size. */
  tokensPerSlot: number;
  dtype: KvDType;
}

/** One sequence's KV box; its data is [layers, 2 (K then V), heads, tokens, headDim] row-major. */
export interface KvSliceBox {
  seqId: number;
  layers: Range;
  heads: Range;
  tokens: Range;
  /**
   * Explicit slots (slot i holds tokens [i * tokensPerSlot, (i + 1) * tokensPerSlot)), chosen by
   * an outside authority such as the coordinator's scheduler; absent: the seqId's reserved slots.
   */
  slotIds?: readonly number[];
}

export function hostKvLayoutFor(
  config: ModelConfig,
  tokensPerSlot: number,
  dtype: KvDType = 'f32',
): HostKvLayout {
  return {
    numLayers: config.numLayers,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    tokensPerSlot,
    dtype,
  };
}

/** Elements of one slot: [layer][K/V][kvHead][tokenInSlot][headDim]. */
export function slotElements(layout: HostKvLayout): number {
  return layout.numLayers * 2 * layout.numKvHeads * layout.tokensPerSlot * layout.headDim;
}

export function slotBytes(layout: HostKvLayout): number {
  return slotElements(layout) * DTYPE_BYTES[layout.dtype];
}

/** [layers, 2, heads, tokens, headDim] of a box. */
export function boxShape(box: KvSliceBox, headDim: number): number[] {
  const { layers, heads, tokens } = box;
  return [layers.end - layers.start, 2, heads.end - heads.start, tokens.end - tokens.start, headDim];
}

export function rangeLength(range: Range): number {
  return range.end - range.start;
}

/** Why `range` is not a non-empty integer range inside [0, limit), or undefined when it is. */
export function checkRange(name: string, range: Range, limit: number): string | undefined {
  const { start, end } = range ?? ({} as Range);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return `${name}: not an integer range`;
  if (start < 0 || end > limit) return `${name} [${start}, ${end}) outside [0, ${limit})`;
  if (start >= end) return `${name} [${start}, ${end}) is empty`;
  return undefined;
}
