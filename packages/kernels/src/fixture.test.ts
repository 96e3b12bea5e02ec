// Kernels on real bf16 weights from the outside-made Llama fixture (safetensors, little-endian
// bf16), checked against the float64 reference of the same weights.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorAgainstMagnitude, makeRng, randomF32, testSeed, toF64 } from '../test/test-support.ts';
import { embed, matmul, reference, setNumThreads, type Weight, weightToFloat64 } from './index.ts';

const fixture = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16/model.safetensors');
const rng = makeRng(testSeed());

interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A 2-D bf16 tensor of the fixture as a Weight (copied so the Uint16Array is aligned). */
function loadWeight(name: string): Weight {
  const file = readFileSync(fixture);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    TensorInfo
  >;
  const info = header[name];
  expect(info.dtype).toBe('BF16');
  const [begin, end] = info.data_offsets;
  const bytes = file.subarray(8 + headerLength + begin, 8 + headerLength + end);
  const data = new Uint16Array(bytes.length / 2);
  for (let i = 0; i < data.length; i++) data[i] = bytes.readUInt16LE(2 * i);
  return { dtype: 'bf16', rows: info.shape[0], cols: info.shape[1], data };
}

describe('kernels on the tiny-llama bf16 fixture', () => {
  it('q/k/v, gate and down projections match the reference for decode and prefill sizes', () => {
    for (const name of [
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.1.self_attn.k_proj.weight',
      'model.layers.3.mlp.gate_proj.weight',
      'model.layers.2.mlp.down_proj.weight',
    ]) {
      const w = loadWeight(name);
      const w64 = weightToFloat64(w);
      // trained weights: finite, small, not all equal
      expect(w64.every(Number.isFinite)).toBe(true);
      expect(w64.reduce((a, v) => Math.max(a, Math.abs(v)), 0)).toBeLessThan(16);
      for (const [m, threads] of [
        [1, 1],
        [8, 2],
        [64, 2],
      ]) {
        setNumThreads(threads);
        const x = randomF32(rng, m * w.cols);
        const out = new Float32Array(m * w.rows);
        matmul(out, x, m, w);
        const ref = reference.matmul(toF64(x), m, w64, w.rows, w.cols);
        const magnitude = reference.matmul(toF64(x).map(Math.abs), m, w64.map(Math.abs), w.rows, w.cols);
        expect(errorAgainstMagnitude(out, ref, magnitude)).toBeLessThan(1e-6);
      }
      setNumThreads(1);
    }
  });

  it('embedding rows are the exact bf16 values', () => {
    const table = loadWeight('model.embed_tokens.weight');
    const ids = Int32Array.of(0, 1, 2047, 1000, 5);
    const out = new Float32Array(ids.length * table.cols);
    embed(out, table, ids);
    expect(Array.from(out)).toEqual(Array.from(reference.embed(weightToFloat64(table), table.cols, ids)));
  });
});
