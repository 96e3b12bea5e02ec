/**
 * Inputs and statistics shared by `seesaw profile`'s measurements (its main thread and its
 * kernel workers): deterministic pseudo-random operands, so every run times the same data.
 */
import { f32ToBf16, type Weight } from '@seesaw/kernels';

/** The middle value (upper middle for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median seconds of `reps` timed calls of `fn`, after one untimed warm-up call. */
export function timeSeconds(fn: () => void, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    fn();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

/** `length` values in [-0.5, 0.5) from a linear congruential stream seeded by `seed`. */
export function filled(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** A [rows][cols] bf16 weight of filled() values. */
export function bf16Weight(rows: number, cols: number, seed: number): Weight {
  const data = new Uint16Array(rows * cols);
  f32ToBf16(filled(rows * cols, seed), data);
  return { dtype: 'bf16', rows, cols, data };
}
