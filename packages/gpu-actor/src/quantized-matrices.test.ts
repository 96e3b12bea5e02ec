import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { weightToFloat64 } from '@seesaw/kernels';
import {
  Checkpoint,
  convertToGguf,
  fullShardSpec,
  generateCheckpoint,
  readTensorF64,
  shardSpec,
} from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelWeights } from './model-weights.ts';

let dir = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'seesaw-quantized-matrices-'));
  await generateCheckpoint({ shape: 'tiny', seed: 3, dtype: 'bf16', outDir: join(dir, 'hf') });
  for (const type of ['Q8_0', 'Q4_0'] as const) {
    convertToGguf({ modelDir: join(dir, 'hf'), outPath: join(dir, `${type}.gguf`), type });
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rows of several tensors stacked, as float64. */
function stacked(checkpoint: Checkpoint, names: string[]): Float64Array {
  const parts = names.map((name) => readTensorF64(checkpoint, name));
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe("a device holds GGUF Q8_0 / Q4_0 matrices as the file's blocks", () => {
  for (const type of ['Q8_0', 'Q4_0'] as const) {
    it(`${type}: packed matrices decode to exactly the file's values, whole and as TP2 slices`, () => {
      const checkpoint = Checkpoint.open(join(dir, `${type}.gguf`));
      const packed = type === 'Q8_0' ? 'q8_0_packed' : 'q4_0_packed';
      const whole = loadModelWeights(checkpoint);
      const p = 'model.layers.1';
      expect(whole.layers[1].qkv.dtype).toBe(packed);
      expect(whole.layers[1].down.dtype).toBe(packed);
      expect(weightToFloat64(whole.layers[1].qkv)).toEqual(
        stacked(checkpoint, [
          `${p}.self_attn.q_proj.weight`,
          `${p}.self_attn.k_proj.weight`,
          `${p}.self_attn.v_proj.weight`,
        ]),
      );
      expect(weightToFloat64(whole.layers[1].down)).toEqual(
        readTensorF64(checkpoint, `${p}.mlp.down_proj.weight`),
      );
      // TP2 rank 1: o_proj / down_proj are column slices starting on a block boundary.
      const rank1 = loadModelWeights(
        checkpoint,
        shardSpec(checkpoint.config, { tp: 2, tpRank: 1, pp: 1, ppStage: 0 }),
      );
      const down = readTensorF64(checkpoint, `${p}.mlp.down_proj.weight`);
      const [rows, cols] = checkpoint.info(`${p}.mlp.down_proj.weight`).shape;
      const half = new Float64Array(rows * (cols / 2));
      for (let r = 0; r < rows; r++)
        half.set(down.subarray(r * cols + cols / 2, (r + 1) * cols), r * (cols / 2));
      expect(rank1.layers[1].down.dtype).toBe(packed);
      expect(weightToFloat64(rank1.layers[1].down)).toEqual(half);
      checkpoint.close();
    });
  }

  it('a column slice that would cut a block keeps that matrix f32, the others packed', () => {
    const checkpoint = Checkpoint.open(join(dir, 'Q8_0.gguf'));
    const spec = structuredClone(fullShardSpec(checkpoint.config));
    spec.layerSlices[0].o = { ...spec.layerSlices[0].o, start: 16, end: 240 };
    const weights = loadModelWeights(checkpoint, spec);
    expect(weights.layers[0].o.dtype).toBe('f32');
    expect(weights.layers[0].qkv.dtype).toBe('q8_0_packed');
    expect(weights.layers[1].o.dtype).toBe('q8_0_packed');
    checkpoint.close();
  });
});
