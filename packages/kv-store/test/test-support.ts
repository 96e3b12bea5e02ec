/**
 * Helpers for the kv-store tests: random bit patterns (every float bit pattern, NaN payloads
 * included, so "bit-exact" really means bits) and an element-by-element reference for boxes.
 */

import type { Xoshiro128 } from '@seesaw/model';
import type { Range } from '@seesaw/protocol';
import type { KvSliceBox } from '../src/host-kv-layout.ts';

export function randomBits(rng: Xoshiro128, length: number): Float32Array {
  const bits = new Uint32Array(length);
  for (let i = 0; i < length; i++) bits[i] = rng.nextU32();
  return new Float32Array(bits.buffer);
}

export function randomInt(rng: Xoshiro128, below: number): number {
  return Math.floor(rng.nextFloat() * below);
}

/** A random non-empty sub-range of [0, limit). */
export function randomRange(rng: Xoshiro128, limit: number): Range {
  const a = randomInt(rng, limit);
  const b = randomInt(rng, limit);
  return { start: Math.min(a, b), end: Math.max(a, b) + 1 };
}

export function bitsOf(data: Float32Array | Uint16Array): Uint32Array | Uint16Array {
  return data instanceof Float32Array ? new Uint32Array(data.buffer, data.byteOffset, data.length) : data;
}

/** Whether two arrays hold the same bits (fast path for the common case, then a scan). */
export function isBitIdentical(a: Float32Array | Uint16Array, b: Float32Array | Uint16Array): boolean {
  if (a.length !== b.length || a.constructor !== b.constructor) return false;
  const x = bitsOf(a);
  const y = bitsOf(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * The box of `full` ([L][2][H][T][D] of a whole sequence), copied one element at a time with
 * index arithmetic written independently of the store's run copies.
 */
export function referenceBox<A extends Float32Array | Uint16Array>(
  full: A,
  fullShape: readonly [number, number, number, number],
  box: KvSliceBox,
): A {
  const [, H, T, D] = [fullShape[0], fullShape[1], fullShape[2], fullShape[3]];
  const out = new (full.constructor as { new (n: number): A })(
    (box.layers.end - box.layers.start) *
      2 *
      (box.heads.end - box.heads.start) *
      (box.tokens.end - box.tokens.start) *
      D,
  );
  const src = bitsOf(full);
  const dst = bitsOf(out);
  let i = 0;
  for (let l = box.layers.start; l < box.layers.end; l++)
    for (let kv = 0; kv < 2; kv++)
      for (let h = box.heads.start; h < box.heads.end; h++)
        for (let t = box.tokens.start; t < box.tokens.end; t++)
          for (let d = 0; d < D; d++) dst[i++] = src[(((l * 2 + kv) * H + h) * T + t) * D + d]!;
  return out;
}
