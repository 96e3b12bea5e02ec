/**
 * The kv-store actor's running totals: requests served and refused, and the KV bytes they moved.
 */

import type { KvSliceAddress } from '@seesaw/protocol';
import type { HostKvLayout } from './host-kv-layout.ts';

/** Running totals (tests, metrics). */
export interface KvStoreCounters {
  numPuts: number;
  numGets: number;
  numErrors: number;
  numBytesIn: number;
  numBytesOut: number;
  /** Shared-memory copies (kvCopyOut, kvCopyIn) and the KV bytes they moved. */
  numCopiesOut: number;
  numCopiesIn: number;
  numBytesCopied: number;
}

/** The totals of an actor that has served nothing yet. */
export function zeroKvStoreCounters(): KvStoreCounters {
  return {
    numPuts: 0,
    numGets: 0,
    numErrors: 0,
    numBytesIn: 0,
    numBytesOut: 0,
    numCopiesOut: 0,
    numCopiesIn: 0,
    numBytesCopied: 0,
  };
}

/** The KV bytes `box` spans in `layout`: what a shared-memory copy adds to numBytesCopied. */
export function boxBytes(box: KvSliceAddress, layout: HostKvLayout): number {
  const { layers, heads, tokens } = box;
  const elements = (layers.end - layers.start) * 2 * (heads.end - heads.start) * (tokens.end - tokens.start);
  return elements * layout.headDim * (layout.dtype === 'f32' ? 4 : 2);
}
