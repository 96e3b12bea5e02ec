import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedTensors } from './expected-tensors.ts';
import type { ModelConfig } from './model-config.ts';
import { loadModelConfig } from './model-location.ts';
import { balancedRange, fullShardSpec, type ShardSpec, shardSpec, shardTensorSlices } from './sharding.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const tiny = loadModelConfig(FIXTURE);

function allShards(config: ModelConfig, tp: number, pp: number): ShardSpec[] {
  const specs: ShardSpec[] = [];
  for (let ppStage = 0; ppStage < pp; ppStage++) {
    for (let tpRank = 0; tpRank < tp; tpRank++) specs.push(shardSpec(config, { tp, tpRank, pp, ppStage }));
  }
  return specs;
}

/** Element count of a slice, given the tensor's full shape. */
function sliceElements(shape: number[], axis: 'rows' | 'columns', start: number, end: number): number {
  if (shape.length === 1) return end - start;
  return axis === 'rows' ? (end - start) * shape[1] : shape[0] * (end - start);
}

describe('balancedRange', () => {
  it('splits into contiguous covering ranges, earlier parts taking the remainder', () => {
    for (const [total, parts] of [
      [4, 3],
      [10, 4],
      [2048, 3],
      [7, 7],
      [3, 5],
    ]) {
      const ranges = Array.from({ length: parts }, (_, i) => balancedRange(total, parts, i));
      expect(ranges[0].start).toBe(0);
      expect(ranges[parts - 1].end).toBe(total);
      for (let i = 1; i < parts; i++) expect(ranges[i].start).toBe(ranges[i - 1].end);
      const sizes = ranges.map((r) => r.end - r.start);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      for (let i = 1; i < parts; i++) expect(sizes[i]).toBeLessThanOrEqual(sizes[i - 1]);
    }
    expect(balancedRange(4, 3, 0)).toEqual({ start: 0, end: 2 });
    expect(() => balancedRange(4, 3, 3)).toThrow(RangeError);
  });
});

describe('shardSpec', () => {
  it('gives a T2 rank its heads, KV heads, MLP columns and vocabulary rows', () => {
    const spec = shardSpec(tiny, { tp: 2, tpRank: 1, pp: 1, ppStage: 0 });
    expect(spec.queryHeads).toEqual({ start: 4, end: 8 });
    expect(spec.kvHeads).toEqual({ start: 2, end: 4 });
    expect(spec.mlpColumns).toEqual({ start: 384, end: 768 });
    expect(spec.vocabRows).toEqual({ start: 1024, end: 2048 });
    const layer = spec.layerSlices[2];
    expect(layer.q).toEqual({
      name: 'model.layers.2.self_attn.q_proj.weight',
      axis: 'rows',
      start: 128,
      end: 256,
    });
    expect(layer.k).toEqual({
      name: 'model.layers.2.self_attn.k_proj.weight',
      axis: 'rows',
      start: 64,
      end: 128,
    });
    expect(layer.v).toEqual({
      name: 'model.layers.2.self_attn.v_proj.weight',
      axis: 'rows',
      start: 64,
      end: 128,
    });
    expect(layer.o).toEqual({
      name: 'model.layers.2.self_attn.o_proj.weight',
      axis: 'columns',
      start: 128,
      end: 256,
    });
    expect(layer.gate).toEqual({
      name: 'model.layers.2.mlp.gate_proj.weight',
      axis: 'rows',
      start: 384,
      end: 768,
    });
    expect(layer.up).toEqual({
      name: 'model.layers.2.mlp.up_proj.weight',
      axis: 'rows',
      start: 384,
      end: 768,
    });
    expect(layer.down).toEqual({
      name: 'model.layers.2.mlp.down_proj.weight',
      axis: 'columns',
      start: 384,
      end: 768,
    });
    expect(layer.inputNorm).toEqual({
      name: 'model.layers.2.input_layernorm.weight',
      axis: 'rows',
      start: 0,
      end: 256,
    });
    expect(layer.qBias).toBeUndefined();
    expect(spec.lmHead).toEqual({ name: 'lm_head.weight', axis: 'rows', start: 1024, end: 2048 });
  });

  it('splits layers over stages, embedding on the first, final norm and lm_head on the last', () => {
    const config = { ...tiny, numLayers: 5 };
    const stages = [0, 1, 2].map((ppStage) => shardSpec(config, { tp: 1, tpRank: 0, pp: 3, ppStage }));
    expect(stages.map((s) => s.layers)).toEqual([
      { start: 0, end: 2 },
      { start: 2, end: 4 },
      { start: 4, end: 5 },
    ]);
    expect(stages.map((s) => s.layerSlices.map((l) => l.layer))).toEqual([[0, 1], [2, 3], [4]]);
    expect(stages.map((s) => s.embedding !== undefined)).toEqual([true, false, false]);
    expect(stages.map((s) => s.lmHead !== undefined && s.finalNorm !== undefined)).toEqual([
      false,
      false,
      true,
    ]);
    expect(stages[0].embedding).toEqual({
      name: 'model.embed_tokens.weight',
      axis: 'rows',
      start: 0,
      end: 2048,
    });
  });

  it('slices q/k/v biases with their weights and reads a tied lm_head from the embedding', () => {
    const config = { ...tiny, attentionBias: true, tieWordEmbeddings: true, vocabSize: 2051 };
    const spec = shardSpec(config, { tp: 4, tpRank: 3, pp: 2, ppStage: 1 });
    const layer = spec.layerSlices[0];
    expect(layer.layer).toBe(2);
    expect(layer.qBias).toEqual({
      name: 'model.layers.2.self_attn.q_proj.bias',
      axis: 'rows',
      start: 192,
      end: 256,
    });
    expect(layer.kBias).toEqual({
      name: 'model.layers.2.self_attn.k_proj.bias',
      axis: 'rows',
      start: 96,
      end: 128,
    });
    expect(layer.vBias).toEqual({
      name: 'model.layers.2.self_attn.v_proj.bias',
      axis: 'rows',
      start: 96,
      end: 128,
    });
    // 2051 rows over 4 ranks: 513, 513, 513, 512.
    expect(spec.lmHead).toEqual({ name: 'model.embed_tokens.weight', axis: 'rows', start: 1539, end: 2051 });
  });

  it('checks ranks and the model split', () => {
    expect(() => shardSpec(tiny, { tp: 2, tpRank: 2, pp: 1, ppStage: 0 })).toThrow(/TP rank 2 outside/);
    expect(() => shardSpec(tiny, { tp: 1, tpRank: 0, pp: 2, ppStage: -1 })).toThrow(/stage -1 outside/);
    expect(() => shardSpec(tiny, { tp: 8, tpRank: 0, pp: 1, ppStage: 0 })).toThrow(/KV heads do not divide/);
  });

  it.each([
    [1, 1],
    [2, 1],
    [4, 1],
    [1, 2],
    [1, 4],
    [2, 2],
    [4, 3],
  ])('T%iP%i: every weight element is read exactly once per TP rank set, norms once per rank', (tp, pp) => {
    for (const config of [tiny, { ...tiny, attentionBias: true, vocabSize: 2047 }]) {
      const shapes = new Map(expectedTensors(config).map((t) => [t.name, t.shape]));
      const shards = allShards(config, tp, pp);
      // Elements read of each tensor, summed over all shards.
      const readCount = new Map<string, number>();
      for (const spec of shards) {
        for (const slice of shardTensorSlices(spec)) {
          const shape = shapes.get(slice.name);
          expect(shape, slice.name).toBeDefined();
          const limit = slice.axis === 'rows' ? shape![0] : shape![1];
          expect(slice.start).toBeGreaterThanOrEqual(0);
          expect(slice.end).toBeLessThanOrEqual(limit);
          expect(slice.end).toBeGreaterThan(slice.start);
          const n = sliceElements(shape!, slice.axis, slice.start, slice.end);
          readCount.set(slice.name, (readCount.get(slice.name) ?? 0) + n);
        }
      }
      for (const [name, shape] of shapes) {
        const elements = shape.reduce((a, b) => a * b, 1);
        // Norms and the embedding are replicated over the TP ranks that need them; all else is split.
        const isReplicated = name.includes('norm') || name === 'model.embed_tokens.weight';
        expect(readCount.get(name), name).toBe(isReplicated ? elements * tp : elements);
      }
    }
  });

  it('fullShardSpec reads every tensor whole', () => {
    const spec = fullShardSpec(tiny);
    const slices = shardTensorSlices(spec);
    const expected = expectedTensors(tiny);
    expect(slices.map((s) => s.name).sort()).toEqual(expected.map((t) => t.name).sort());
    for (const slice of slices) {
      const shape = expected.find((t) => t.name === slice.name)!.shape;
      expect(sliceElements(shape, slice.axis, slice.start, slice.end)).toBe(shape.reduce((a, b) => a * b, 1));
    }
  });
});
