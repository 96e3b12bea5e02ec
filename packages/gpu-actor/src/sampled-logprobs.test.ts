import { describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../../kernels/test/test-support.ts';
import { sampledLogprobs } from './sampled-logprobs.ts';

const rng = makeRng(testSeed());

/** float64 log-softmax, and every id ordered by value (largest first, lower id first on ties). */
function reference(row: Float32Array): { logprobs: number[]; order: number[] } {
  const values = Array.from(row);
  const max = Math.max(...values);
  const logSum = Math.log(values.reduce((sum, v) => sum + Math.exp(v - max), 0));
  const logprobs = values.map((v) => v - max - logSum);
  const order = values.map((_, id) => id).sort((a, b) => values[b] - values[a] || a - b);
  return { logprobs, order };
}

describe('sampledLogprobs', () => {
  it('equals a float64 log-softmax for the chosen token and the top alternatives', () => {
    for (let trial = 0; trial < 20; trial++) {
      const vocab = 1 + Math.floor(rng() * 3000);
      const row = randomF32(rng, vocab, 1 + rng() * 20);
      // Ties: copies of values, one of them the maximum sometimes.
      for (let i = 0; i < 5; i++) row[Math.floor(rng() * vocab)] = row[Math.floor(rng() * vocab)];
      const chosen = Math.floor(rng() * vocab);
      const numTop = Math.floor(rng() * 21);
      const got = sampledLogprobs(row, chosen, numTop);
      const expected = reference(row);
      expect(Math.abs(got.logprob - expected.logprobs[chosen])).toBeLessThan(1e-9);
      expect(got.top.map((t) => t.tokenId)).toEqual(expected.order.slice(0, numTop));
      for (const top of got.top)
        expect(Math.abs(top.logprob - expected.logprobs[top.tokenId])).toBeLessThan(1e-9);
    }
  });

  it('gives -Infinity to a token the logits rule out, and finite values to the rest', () => {
    const row = Float32Array.of(1, Number.NEGATIVE_INFINITY, 3);
    const got = sampledLogprobs(row, 1, 3);
    expect(got.logprob).toBe(Number.NEGATIVE_INFINITY);
    expect(got.top.map((t) => t.tokenId)).toEqual([2, 0, 1]);
    expect(got.top[0].logprob).toBeCloseTo(-Math.log(1 + Math.exp(-2)), 12);
  });
});
