import { join } from 'node:path';
import type { Weight } from '@seesaw/kernels';
import { Checkpoint, parseParallelConfig, shardSpec } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelWeights, type ModelWeights } from './model-weights.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

/** Rows [a, b) of a weight as a plain array of its stored values. */
function rowsOf(w: Weight, a: number, b: number): number[] {
  return Array.from(w.data.subarray(a * w.cols, b * w.cols));
}

/** Columns [a, b) of every row, row by row. */
function columnsOf(w: Weight, a: number, b: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < w.rows; r++) out.push(...w.data.subarray(r * w.cols + a, r * w.cols + b));
  return out;
}

let checkpoint: Checkpoint;
let full: ModelWeights;
beforeAll(() => {
  checkpoint = Checkpoint.open(FIXTURE);
  full = loadModelWeights(checkpoint);
});
afterAll(() => checkpoint.close());

describe('loadModelWeights with a shard', () => {
  it('reads exactly the rank-1-of-T2 slices of each tensor (stage 1 of P2)', () => {
    const spec = shardSpec(checkpoint.config, { tp: 2, tpRank: 1, pp: 2, ppStage: 1 });
    const shard = loadModelWeights(checkpoint, spec);
    expect(shard.embedding).toBeUndefined();
    expect(shard.layers).toHaveLength(2);
    // Fused full qkv rows: q [0, 256), k [256, 384), v [384, 512); rank 1 owns q heads 4-7, KV heads 2-3.
    for (const [local, layer] of [2, 3].entries()) {
      const whole = full.layers[layer];
      const mine = shard.layers[local];
      expect(mine.qkv.rows).toBe(256);
      expect(rowsOf(mine.qkv, 0, 256)).toEqual([
        ...rowsOf(whole.qkv, 128, 256),
        ...rowsOf(whole.qkv, 320, 384),
        ...rowsOf(whole.qkv, 448, 512),
      ]);
      expect(mine.o).toMatchObject({ rows: 256, cols: 128 });
      expect(Array.from(mine.o.data)).toEqual(columnsOf(whole.o, 128, 256));
      // Fused full gateUp rows: gate [0, 768), up [768, 1536); rank 1 owns MLP columns [384, 768).
      expect(Array.from(mine.gateUp.data)).toEqual([
        ...rowsOf(whole.gateUp, 384, 768),
        ...rowsOf(whole.gateUp, 1152, 1536),
      ]);
      expect(Array.from(mine.down.data)).toEqual(columnsOf(whole.down, 384, 768));
      expect(mine.inputNorm).toEqual(whole.inputNorm);
      expect(mine.postAttentionNorm).toEqual(whole.postAttentionNorm);
    }
    expect(shard.lmHead).toMatchObject({ rows: 1024, cols: 256 });
    expect(Array.from(shard.lmHead!.data)).toEqual(rowsOf(full.lmHead!, 1024, 2048));
    expect(shard.finalNorm).toEqual(full.finalNorm);
  });

  it('holds about 1/tp of the weights per rank and 1/pp of the layers per stage', () => {
    const { hiddenSize, numLayers, vocabSize } = checkpoint.config;
    const embeddingBytes = vocabSize * hiddenSize * 2; // bf16
    const layerNormBytes = 2 * hiddenSize * 4; // two f32 norms a layer
    const layerBytes = (full.numBytes - 2 * embeddingBytes - hiddenSize * 4) / numLayers;
    const bytesOf = (name: string) => {
      const { tp, pp } = parseParallelConfig(name);
      const bytes: number[][] = [];
      for (let ppStage = 0; ppStage < pp; ppStage++) {
        bytes.push([]);
        for (let tpRank = 0; tpRank < tp; tpRank++) {
          bytes[ppStage].push(
            loadModelWeights(checkpoint, shardSpec(checkpoint.config, { tp, tpRank, pp, ppStage })).numBytes,
          );
        }
      }
      console.log(
        `${name} weight bytes per [stage][rank]: ${JSON.stringify(bytes)} (whole ${full.numBytes})`,
      );
      return bytes;
    };
    // T4: matrices split 4 ways, except the replicated embedding and norms.
    const t4 = bytesOf('T4');
    const replicated = embeddingBytes + numLayers * layerNormBytes + hiddenSize * 4;
    for (const b of t4[0]) expect(b).toBe((full.numBytes - replicated) / 4 + replicated);
    // P4: one layer per stage, embedding on the first, final norm and lm_head on the last.
    const p4 = bytesOf('P4').map((stage) => stage[0]);
    expect(p4).toEqual([
      embeddingBytes + layerBytes,
      layerBytes,
      layerBytes,
      layerBytes + hiddenSize * 4 + embeddingBytes,
    ]);
    expect(p4.reduce((a, b) => a + b, 0)).toBe(full.numBytes);
    // T2P2: every rank of a stage holds the same; the stages' split parts add up to the whole.
    const t2p2 = bytesOf('T2P2');
    expect(t2p2[0][0]).toBe(t2p2[0][1]);
    expect(t2p2[1][0]).toBe(t2p2[1][1]);
    expect(t2p2.flat().reduce((a, b) => a + b, 0)).toBe(
      full.numBytes + embeddingBytes + numLayers * layerNormBytes + hiddenSize * 4,
    );
    const halfLayer = (layerBytes - layerNormBytes) / 2 + layerNormBytes;
    expect(t2p2[0][0]).toBe(embeddingBytes + 2 * halfLayer);
    expect(t2p2[1][0]).toBe(2 * halfLayer + hiddenSize * 4 + embeddingBytes / 2);
  });
});
