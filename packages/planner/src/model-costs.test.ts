import { join } from 'node:path';
import { Checkpoint, loadModelConfig } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { modelCosts } from './model-costs.ts';
import { MODEL_PRESET_NAMES, modelPreset } from './model-presets.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

describe('model presets and parameter counts', () => {
  // Published parameter counts (model cards / config-derived), and our chosen 15B shape.
  const published: Record<string, number> = {
    'llama-2-7b': 6.74e9,
    'llama-2-13b': 13.02e9,
    'llama-2-70b': 68.98e9,
    'llama-3-8b': 8.03e9,
    'llama-3-70b': 70.55e9,
    'codellama-34b': 33.74e9,
    'llama-3-15b': 14.9e9,
  };

  it.each(MODEL_PRESET_NAMES)('%s has its published parameter count within 0.5%%', (name) => {
    const costs = modelCosts(modelPreset(name));
    expect(Math.abs(costs.totalParams / published[name] - 1)).toBeLessThan(0.005);
    expect(costs.totalWeightBytes).toBe(2 * costs.totalParams);
  });

  it('counts exactly the bytes of a real checkpoint (tiny bf16 fixture)', () => {
    const costs = modelCosts(loadModelConfig(FIXTURE), 2);
    expect(costs.totalWeightBytes).toBe(Checkpoint.tensorBytesOf(FIXTURE));
  });

  it('KV bytes per token: layers x 2 (K, V) x KV heads x head dim x 2 bytes', () => {
    const costs = modelCosts(modelPreset('llama-2-70b'));
    expect(costs.kvBytesPerToken).toBe(80 * 2 * 8 * 128 * 2);
  });

  it('KV bytes follow the KV element width, not the weights or activations (--kv-dtype)', () => {
    const f32Kv = modelCosts(modelPreset('llama-2-7b'), 2, 4);
    const bf16Kv = modelCosts(modelPreset('llama-2-7b'), 2, 4, 2);
    expect(f32Kv.kvBytesPerToken).toBe(32 * 2 * 32 * 128 * 4);
    expect(bf16Kv.kvBytesPerToken * 2).toBe(f32Kv.kvBytesPerToken);
    expect(bf16Kv.computeBytes).toBe(4);
  });

  it('rejects unknown presets by name', () => {
    expect(() => modelPreset('gpt-5')).toThrow(/unknown model preset 'gpt-5'.*llama-2-70b/);
  });
});
