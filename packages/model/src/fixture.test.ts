import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { decodeValues } from './dtype-convert.ts';
import { expectedTensors } from './expected-tensors.ts';
import { ReferenceModel } from './reference-forward.ts';
import { loadReferenceWeights, readTensorF64 } from './reference-weights.ts';
import { SeesawTokenizer } from './tokenizer.ts';

// A real Llama checkpoint written by an outside tool (bf16, hidden 256, 4 layers, vocab 2048).
const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

function stats(v: Float64Array): { mean: number; std: number; maxAbs: number; finite: boolean } {
  let sum = 0;
  let sumSq = 0;
  let maxAbs = 0;
  let finite = true;
  for (const x of v) {
    sum += x;
    sumSq += x * x;
    maxAbs = Math.max(maxAbs, Math.abs(x));
    finite &&= Number.isFinite(x);
  }
  const mean = sum / v.length;
  return { mean, std: Math.sqrt(sumSq / v.length - mean * mean), maxAbs, finite };
}

describe('outside tiny-llama fixture', () => {
  it('opens and validates against its config', () => {
    const ckpt = Checkpoint.open(FIXTURE);
    ckpt.validate();
    expect(ckpt.names().sort()).toEqual(
      expectedTensors(ckpt.config)
        .map((t) => t.name)
        .sort(),
    );
    expect(ckpt.info('model.embed_tokens.weight')).toMatchObject({
      dtype: 'BF16',
      shape: [2048, 256],
      byteLength: 2048 * 256 * 2,
    });
    expect(SeesawTokenizer.load(FIXTURE)).toBeNull();
    ckpt.close();
  });

  it('decodes bf16 tensors to sane values', () => {
    const ckpt = Checkpoint.open(FIXTURE);
    for (const { name, shape } of expectedTensors(ckpt.config)) {
      const s = stats(readTensorF64(ckpt, name));
      expect(s.finite, name).toBe(true);
      if (shape.length === 1) {
        // RMSNorm weights sit near 1.
        expect(Math.abs(s.mean - 1), name).toBeLessThan(0.1);
        expect(s.maxAbs, name).toBeLessThan(3);
      } else if (name === 'model.embed_tokens.weight') {
        expect(s.std, name).toBeGreaterThan(0.5);
        expect(s.std, name).toBeLessThan(2);
      } else {
        // Projections: zero-mean with std around 1/sqrt(fan_in).
        const expectedStd = 1 / Math.sqrt(shape[1]);
        expect(Math.abs(s.mean), name).toBeLessThan(0.01);
        expect(s.std / expectedStd, name).toBeGreaterThan(0.5);
        expect(s.std / expectedStd, name).toBeLessThan(2);
      }
    }
    ckpt.close();
  });

  it('readRows and readColumns agree with the whole tensor', () => {
    const ckpt = Checkpoint.open(FIXTURE);
    const name = 'model.layers.2.mlp.down_proj.weight'; // [256, 768]
    const whole = readTensorF64(ckpt, name);
    const rows = new Uint8Array(5 * 768 * 2);
    ckpt.readRows(name, 100, 105, rows);
    expect(decodeValues(rows, 'BF16')).toEqual(whole.subarray(100 * 768, 105 * 768));
    const cols = new Uint8Array(256 * 192 * 2);
    ckpt.readColumns(name, 384, 576, cols);
    const got = decodeValues(cols, 'BF16');
    for (const r of [0, 1, 77, 255]) {
      expect(got.subarray(r * 192, (r + 1) * 192)).toEqual(whole.subarray(r * 768 + 384, r * 768 + 576));
    }
    ckpt.close();
  });

  it('runs through the reference model with finite, spread-out logits', () => {
    const ckpt = Checkpoint.open(FIXTURE);
    const model = new ReferenceModel(ckpt.config, loadReferenceWeights(ckpt));
    ckpt.close();
    const logits = model.forward([1, 17, 300, 2000, 5]);
    expect(model.numCached).toBe(5);
    for (const row of logits) {
      const s = stats(row);
      expect(s.finite).toBe(true);
      expect(s.std).toBeGreaterThan(0.1);
    }
  });
});
