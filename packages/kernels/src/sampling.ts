// Choosing each sampled row's token from its logits: greedy (argmax) or a seeded draw.
import { native } from './native-addon.ts';

/** Greedy: index of the max of each row (first index on ties). logits [rows][n]. */
export function argmaxRows(logits: Float32Array, rows: number, n: number): Int32Array {
  return native.argmaxRows(logits, rows, n);
}

/** Samples one token: temperature scaling, top-k (k<=0: off), top-p (>=1: off) over the
 *  softmax, renormalised; returns the first candidate (descending probability, ties by lower
 *  index) whose cumulative probability exceeds uniform*total. Top-p keeps the shortest prefix
 *  whose probability reaches topP (at least one token). */
export function sampleRow(
  logits: Float32Array,
  temperature: number,
  topK: number,
  topP: number,
  uniform: number,
): number {
  return native.sampleRow(logits, temperature, topK, topP, uniform);
}

/** One row's settings for sampleRows (see sampleRow). */
export interface RowSamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  uniform: number;
}

/**
 * The token of each of `settings.length` rows of `logits` ([rows][vocab]), the rows spread over
 * the calling thread's kernel pool: sampleRow's id for a row with a temperature, argmaxRows' id
 * for a row with temperature 0 (greedy).
 */
export function sampleRows(
  logits: Float32Array,
  vocab: number,
  settings: readonly RowSamplingSettings[],
): Int32Array {
  const packed = new Float64Array(settings.length * 4);
  settings.forEach((row, r) => {
    packed.set([row.temperature, row.topK, row.topP, row.uniform], r * 4);
  });
  const out = new Int32Array(settings.length);
  native.sampleRows(out, logits, vocab, packed);
  return out;
}
