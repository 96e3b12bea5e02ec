/**
 * drawFromHead against the CPU sampler's draw over the whole row (kernels.sampleRow), on random
 * rows with fresh seeds: whenever it answers, its token is the CPU's; the tail weight is the f32
 * sum the GPU kernel makes (here summed in f32 on the host, 64 lanes then a halving tree).
 */
import { sampleRow } from '@seesaw/kernels';
import { describe, expect, it } from 'vitest';
import { drawFromHead } from './certified-draw.ts';
import { makeRng, randomF32, testSeed } from './webgpu-test-support.ts';

const rng = makeRng(testSeed());

/** The row's ids in the sampler's order (descending, ties by lower id, NaN as -inf). */
function samplerOrder(row: Float32Array): number[] {
  const rank = (i: number) => (Number.isNaN(row[i]) ? -Infinity : row[i]);
  return Array.from(row, (_, i) => i).sort((a, b) => rank(b) - rank(a) || a - b);
}

/** tailWeights' f32 sum over the entries after the head, lane by lane then by halving. */
function f32TailWeight(row: Float32Array, order: number[], k: number, temperature: number): number {
  const invT = Math.fround(1 / temperature);
  const top = row[order[0]];
  const lanes = new Float32Array(64);
  const after = new Set(order.slice(k));
  for (let i = 0; i < row.length; i++) {
    if (!after.has(i) || !(row[i] > -Infinity)) continue;
    lanes[i % 64] = Math.fround(
      lanes[i % 64] + Math.fround(Math.exp(Math.fround(Math.fround(row[i] - top) * invT))),
    );
  }
  for (let width = 32; width > 0; width >>= 1)
    for (let lane = 0; lane < width; lane++) lanes[lane] = Math.fround(lanes[lane] + lanes[lane + width]);
  return lanes[0];
}

describe('drawFromHead: the CPU draw over a whole row from its head and tail weight', () => {
  it('answers the token sampleRow draws over the whole row, or null (then the caller reads the row)', () => {
    let decided = 0;
    let undecided = 0;
    for (let trial = 0; trial < 300; trial++) {
      const n = 500 + Math.floor(rng() * 3000);
      const row = randomF32(rng, n, [0.5, 4, 12][trial % 3]);
      if (trial % 7 === 0) row[Math.floor(rng() * n)] = Number.NaN;
      if (trial % 11 === 0) row[Math.floor(rng() * n)] = -Infinity;
      const order = samplerOrder(row);
      const k = [16, 64, 256][trial % 3];
      const temperature = [0.2, 0.7, 1, 1.8][trial % 4];
      const topK = [0, 0, k + 50, n + 10][trial % 4];
      const topP = [1, 0.9, 0.5, 1, 0.95][trial % 5];
      const uniform = rng();
      const head = {
        values: Float32Array.from(order.slice(0, k), (i) => (Number.isNaN(row[i]) ? -Infinity : row[i])),
        ids: Int32Array.from(order.slice(0, k)),
        tailWeight: f32TailWeight(row, order, k, temperature),
        rowLength: n,
      };
      const pick = drawFromHead(head, temperature, topK, topP, uniform);
      if (pick === null) {
        undecided++;
        continue;
      }
      decided++;
      expect(pick, `trial ${trial}: n ${n}, k ${k}, T ${temperature}, top-k ${topK}, top-p ${topP}`).toBe(
        sampleRow(row.slice(), temperature, topK, topP, uniform),
      );
    }
    console.log(`drawFromHead: ${decided} draws decided from the head, ${undecided} left to the whole row`);
    // Peaked rows (scale 12) are mostly decided from the head; flat ones (scale 0.5) mostly not.
    expect(decided).toBeGreaterThan(60);
  });

  it('a head whose first value is not finite picks it, as sampleRow does', () => {
    const row = new Float32Array([Number.POSITIVE_INFINITY, 1, 2, 3]);
    const head = {
      values: new Float32Array([Infinity]),
      ids: new Int32Array([0]),
      tailWeight: 0,
      rowLength: 4,
    };
    expect(drawFromHead(head, 1, 0, 1, 0.5)).toBe(sampleRow(row, 1, 0, 1, 0.5));
  });
});
