import { describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../test/test-support.ts';
import { argmaxRows, reference, sampleRow, sampleRows, setNumThreads } from './index.ts';

const rng = makeRng(testSeed());

/** Whether u lies within rounding distance of a cumulative-probability boundary, where float
 *  summation order may legitimately pick the neighbouring token. */
function nearBucketEdge(probs: number[], u: number): boolean {
  let cumulative = 0;
  for (const p of probs) {
    cumulative += p;
    if (Math.abs(cumulative - u) < 1e-9) return true;
  }
  return false;
}

describe('argmaxRows', () => {
  it('matches the reference, first index on ties', () => {
    const rows = 9;
    const n = 1001;
    const logits = randomF32(rng, rows * n, 5);
    // ties: row 1 max at 10 and 700; row 2 all equal; row 3 max at the last index
    logits.fill(1, 2 * n, 3 * n);
    logits[n + 10] = 9;
    logits[n + 700] = 9;
    logits[3 * n + n - 1] = 50;
    const got = argmaxRows(logits, rows, n);
    expect(Array.from(got)).toEqual(Array.from(reference.argmaxRows(logits, rows, n)));
    expect(got[1]).toBe(10);
    expect(got[2]).toBe(0);
    expect(got[3]).toBe(n - 1);
  });
  it('matches the reference on rows with NaN, -inf and ties, whichever lane or tail holds the max', () => {
    // The native kernel takes 32 values a round and finishes with a scalar tail: lengths around
    // those edges, the max in every position class, and rows the vector part cannot decide.
    for (const n of [1, 2, 31, 63, 64, 65, 96, 127, 128, 200, 1000, 32000]) {
      const rows = 12;
      const logits = randomF32(rng, rows * n, 3);
      const at = (row: number, i: number) => row * n + Math.min(i, n - 1);
      logits[at(0, 0)] = Number.NaN; // row 0: a NaN first, never chosen
      logits.fill(Number.NaN, at(1, 0), (1 + 1) * n); // row 1: NaN only -> 0
      logits.fill(-Infinity, at(2, 0), (2 + 1) * n); // row 2: -inf only -> 0
      logits.fill(-Infinity, at(3, 0), (3 + 1) * n); // row 3: -inf, then NaN, then one finite value last
      logits[at(3, 1)] = Number.NaN;
      logits[at(3, n - 1)] = -1e30;
      logits.fill(Number.NaN, at(4, 0), (4 + 1) * n); // row 4: NaN except a -inf in the tail
      logits[at(4, n - 1)] = -Infinity;
      for (let row = 5; row < rows; row++) {
        // a tie for the max between two random positions, NaN sprinkled in
        const i = Math.floor(rng() * n);
        const j = Math.floor(rng() * n);
        logits[at(row, i)] = 7;
        logits[at(row, j)] = 7;
        for (let k = 0; k < n / 50; k++) logits[at(row, Math.floor(rng() * n))] = Number.NaN;
        logits[at(row, Math.min(i, j))] = 7;
      }
      const got = Array.from(argmaxRows(logits, rows, n));
      expect(got, `n ${n}`).toEqual(Array.from(reference.argmaxRows(logits, rows, n)));
      expect(got.slice(1, 3), `n ${n}`).toEqual([0, 0]);
      if (n > 2) expect(got[3], `n ${n}`).toBe(n - 1);
    }
  });
});

describe('sampleRow', () => {
  it('top-k = 1 equals argmax for any temperature and uniform', () => {
    for (let i = 0; i < 50; i++) {
      const logits = randomF32(rng, 300, 4);
      const best = argmaxRows(logits, 1, 300)[0];
      expect(sampleRow(logits, 0.1 + rng() * 3, 1, 1, rng())).toBe(best);
    }
  });

  it('ties are ordered by lower index', () => {
    const logits = Float32Array.of(0, 2, 1, 2, 2);
    // three equal top candidates 1, 3, 4 then 2, 0; top-k 3 keeps exactly the tied ones
    expect(sampleRow(logits, 1, 3, 1, 0)).toBe(1);
    expect(sampleRow(logits, 1, 3, 1, 0.34)).toBe(3);
    expect(sampleRow(logits, 1, 3, 1, 0.99)).toBe(4);
    expect(sampleRow(logits, 1, 2, 1, 0.99)).toBe(3);
  });

  it('agrees with the reference on individual draws away from bucket edges', () => {
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng() * 60);
      const logits = randomF32(rng, n, 3);
      const temperature = 0.2 + rng() * 2;
      const topK = Math.floor(rng() * (n + 3)) - 1;
      const topP = rng() < 0.3 ? 1 : rng();
      const u = rng();
      const { probs } = reference.samplingCandidates(logits, temperature, topK, topP);
      if (nearBucketEdge(probs, u)) continue;
      expect(sampleRow(logits, temperature, topK, topP, u)).toBe(
        reference.sampleRow(logits, temperature, topK, topP, u),
      );
    }
  });

  it('large flat vocabulary: the lazily sorted prefix grows as far as the draw needs', () => {
    const n = 6000;
    const logits = randomF32(rng, n, 0.5);
    for (const [topK, topP] of [
      [0, 1],
      [0, 0.9],
      [4500, 1], // top-k above the small-k heap path: selection, then lazy sorting
      [4500, 0.7],
      [3000, 0.95],
    ]) {
      const { probs } = reference.samplingCandidates(logits, 1, topK, topP);
      for (let i = 0; i < 60; i++) {
        const u = rng();
        if (nearBucketEdge(probs, u)) continue;
        expect(sampleRow(logits, 1, topK, topP, u)).toBe(reference.sampleRow(logits, 1, topK, topP, u));
      }
    }
  });

  it('large vocabulary with many equal logits (-0 and +0 among them): the radix order is the reference order', () => {
    // Above 4096 ids the whole row is radix sorted; its passes must keep equal logits in id
    // order, whichever digits they share, and rank -0 with +0.
    const n = 5003;
    const values = [-0, 0, 0.25, -1.5, 3, -Infinity, 3.0000002];
    const logits = new Float32Array(n).map(() => values[Math.floor(rng() * values.length)]!);
    const { probs } = reference.samplingCandidates(logits, 0.7, 0, 1);
    for (let i = 0; i < 200; i++) {
      const u = (i + rng()) / 200;
      if (nearBucketEdge(probs, u)) continue;
      expect(sampleRow(logits, 0.7, 0, 1, u)).toBe(reference.sampleRow(logits, 0.7, 0, 1, u));
    }
    // A flat row: the k-th id is drawn for u inside the k-th bucket.
    const flat = new Float32Array(n).fill(-2);
    for (const k of [0, 1, 2047, 2048, 4999, n - 1]) expect(sampleRow(flat, 1, 0, 1, (k + 0.5) / n)).toBe(k);
  });

  it('draws follow the reference probabilities over a uniform grid', () => {
    const n = 40;
    const logits = randomF32(rng, n, 2);
    for (const [temperature, topK, topP] of [
      [1, 0, 1],
      [0.7, 10, 1],
      [1.3, 0, 0.8],
      [1, 25, 0.5],
    ]) {
      const draws = 20_000;
      const counts = new Float64Array(n);
      for (let i = 0; i < draws; i++) counts[sampleRow(logits, temperature, topK, topP, (i + 0.5) / draws)]++;
      const { tokens, probs } = reference.samplingCandidates(logits, temperature, topK, topP);
      const expected = new Float64Array(n);
      tokens.forEach((t, i) => {
        expected[t] = probs[i];
      });
      // a grid of uniforms gives each bucket its probability to within one grid step
      for (let t = 0; t < n; t++)
        expect(Math.abs(counts[t] / draws - expected[t])).toBeLessThanOrEqual(1.01 / draws);
    }
  });

  it('top-p edge cases', () => {
    const logits = Float32Array.of(Math.log(0.5), Math.log(0.3), Math.log(0.2));
    // topP 0 (or tiny) keeps only the top token
    expect(sampleRow(logits, 1, 0, 0, 0.99)).toBe(0);
    expect(sampleRow(logits, 1, 0, 1e-9, 0.99)).toBe(0);
    // topP reached exactly by a prefix keeps that prefix: 0.5 -> {0}
    expect(reference.samplingCandidates(logits, 1, 0, 0.5).tokens).toEqual([0]);
    // just above 0.5 needs the second token; renormalised 0.5/0.8 = 0.625
    expect(sampleRow(logits, 1, 0, 0.51, 0.6)).toBe(0);
    expect(sampleRow(logits, 1, 0, 0.51, 0.65)).toBe(1);
    expect(sampleRow(logits, 1, 0, 0.51, 0.999)).toBe(1);
    // topP >= 1 is off: all three reachable
    expect(sampleRow(logits, 1, 0, 1, 0.95)).toBe(2);
    expect(sampleRow(logits, 1, 0, 5, 0.95)).toBe(2);
    // a single logit always returns 0
    expect(sampleRow(Float32Array.of(3), 2, 0, 0.3, 0.7)).toBe(0);
  });

  it('-inf logits are never drawn; temperature sharpens the distribution', () => {
    const logits = Float32Array.of(Number.NEGATIVE_INFINITY, 1, 0, Number.NEGATIVE_INFINITY);
    for (let i = 0; i < 100; i++) expect([1, 2]).toContain(sampleRow(logits, 1, 0, 1, i / 100));
    // at temperature 0.05 token 2 has probability e^-20
    expect(sampleRow(logits, 0.05, 0, 1, 0.999999)).toBe(1);
  });
});

describe('sampleRows', () => {
  it('gives each row the id sampleRow (or argmaxRows at temperature 0) gives it, on 1 and 2 threads', () => {
    const vocab = 5000 + Math.floor(rng() * 3000);
    const rows = 9;
    const logits = randomF32(rng, rows * vocab, 3);
    const settings = Array.from({ length: rows }, () => ({
      temperature: rng() < 0.3 ? 0 : 0.3 + rng() * 1.5,
      topK: rng() < 0.3 ? Math.floor(rng() * 100) : 0,
      topP: rng() < 0.5 ? 1 : 0.5 + rng() / 2,
      uniform: rng(),
    }));
    const expected = settings.map((s, r) => {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      return s.temperature === 0
        ? argmaxRows(row, 1, vocab)[0]
        : sampleRow(row, s.temperature, s.topK, s.topP, s.uniform);
    });
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      expect(Array.from(sampleRows(logits, vocab, settings))).toEqual(expected);
    }
    setNumThreads(1);
  });

  it('refuses settings or logits of the wrong size, and bad settings, naming them', () => {
    const logits = new Float32Array(8);
    const ok = { temperature: 1, topK: 0, topP: 1, uniform: 0.5 };
    expect(() => sampleRows(logits, 3, [ok, ok])).toThrow(/logits/);
    expect(() => sampleRows(logits, 4, [ok, { ...ok, temperature: -1 }])).toThrow(/temperature/);
    expect(() => sampleRows(logits, 4, [ok, { ...ok, uniform: 1 }])).toThrow(/uniform/);
  });
});
