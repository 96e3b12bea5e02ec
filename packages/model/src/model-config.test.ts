import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseModelConfig } from './model-config.ts';
import { loadModelConfig } from './model-location.ts';
import { ropeInvFreq } from './rope.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

function llamaJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 100,
    rms_norm_eps: 1e-5,
    bos_token_id: 1,
    eos_token_id: 2,
    ...overrides,
  };
}

function expectConfigError(json: unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    parseModelConfig(json, 'test.json');
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ModelConfigError);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

describe('parseModelConfig', () => {
  it('parses the outside tiny-llama fixture', () => {
    const c = loadModelConfig(FIXTURE);
    expect(c).toEqual({
      architecture: 'LlamaForCausalLM',
      hiddenSize: 256,
      intermediateSize: 768,
      numLayers: 4,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 32,
      vocabSize: 2048,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      maxPositionEmbeddings: 2048,
      attentionBias: false,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      torchDtype: 'bfloat16',
    });
  });

  it('derives head_dim and KV heads, accepts eos lists, Qwen2 biases and Mistral', () => {
    const c = parseModelConfig(llamaJson({ num_key_value_heads: undefined, eos_token_id: [2, 7] }), 't');
    expect(c.headDim).toBe(16);
    expect(c.numKvHeads).toBe(4);
    expect(c.eosTokenIds).toEqual([2, 7]);
    expect(c.bosTokenId).toBe(1);
    expect(parseModelConfig(llamaJson({ head_dim: 32 }), 't').headDim).toBe(32);
    const qwen = parseModelConfig(
      llamaJson({
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        sliding_window: 4,
        use_sliding_window: false,
      }),
      't',
    );
    expect(qwen.attentionBias).toBe(true);
    expect(
      parseModelConfig(llamaJson({ architectures: ['MistralForCausalLM'], sliding_window: null }), 't')
        .architecture,
    ).toBe('MistralForCausalLM');
    expect(parseModelConfig(llamaJson({ architectures: undefined }), 't').architecture).toBe(
      'LlamaForCausalLM',
    );
    expect(parseModelConfig(llamaJson({ tie_word_embeddings: true }), 't').tieWordEmbeddings).toBe(true);
  });

  it('rejects unknown architectures', () => {
    expectConfigError(
      llamaJson({ architectures: ['GPT2LMHeadModel'] }),
      'test.json',
      '"architectures"',
      'GPT2LMHeadModel',
    );
    expectConfigError(llamaJson({ architectures: undefined, model_type: 'gpt2' }), '"model_type"', 'gpt2');
    expectConfigError(
      llamaJson({ architectures: undefined, model_type: undefined }),
      '"architectures"',
      'missing',
    );
  });

  it('names missing required fields', () => {
    for (const field of [
      'hidden_size',
      'intermediate_size',
      'num_hidden_layers',
      'num_attention_heads',
      'vocab_size',
    ]) {
      expectConfigError(llamaJson({ [field]: undefined }), `"${field}"`, 'missing');
    }
    expectConfigError('not an object', 'test.json', 'JSON object');
  });

  it('rejects bad values with the field name', () => {
    expectConfigError(llamaJson({ hidden_size: -64 }), '"hidden_size"', 'positive integer', '-64');
    expectConfigError(llamaJson({ num_hidden_layers: 2.5 }), '"num_hidden_layers"');
    expectConfigError(llamaJson({ vocab_size: '100' }), '"vocab_size"');
    expectConfigError(llamaJson({ rms_norm_eps: 0 }), '"rms_norm_eps"');
    expectConfigError(llamaJson({ rope_theta: Number.NaN }), '"rope_theta"');
    expectConfigError(llamaJson({ num_key_value_heads: 3 }), '"num_key_value_heads"', 'divide');
    expectConfigError(llamaJson({ hidden_size: 66 }), '"hidden_size"', 'divisible');
    expectConfigError(llamaJson({ head_dim: 15 }), '"head_dim"', 'even');
    expectConfigError(llamaJson({ eos_token_id: [2, 'x'] }), '"eos_token_id"');
    expectConfigError(llamaJson({ bos_token_id: 100 }), '"bos_token_id"', 'outside vocab_size');
    expectConfigError(llamaJson({ tie_word_embeddings: 'yes' }), '"tie_word_embeddings"');
    expectConfigError(llamaJson({ hidden_act: 'gelu' }), '"hidden_act"', 'silu');
    expectConfigError(llamaJson({ mlp_bias: true }), '"mlp_bias"');
    expectConfigError(llamaJson({ sliding_window: 512, max_position_embeddings: 4096 }), '"sliding_window"');
    expectConfigError(
      llamaJson({ rope_scaling: { rope_type: 'yarn', factor: 4 } }),
      '"rope_scaling"',
      'yarn',
    );
    expectConfigError(
      llamaJson({ rope_scaling: { rope_type: 'llama3', factor: 8 } }),
      'rope_scaling',
      '"low_freq_factor"',
    );
    expectConfigError(
      llamaJson({ rope_scaling: { type: 'linear', factor: -1 } }),
      'rope_scaling',
      '"factor"',
    );
  });

  it('loadModelConfig reports unreadable and malformed files with the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-config-'));
    expect(() => loadModelConfig(dir)).toThrow(/config\.json: cannot read config/);
    writeFileSync(join(dir, 'config.json'), '{ "hidden_size": ');
    expect(() => loadModelConfig(dir)).toThrow(/config\.json: invalid JSON/);
  });
});

describe('ropeInvFreq', () => {
  const base = llamaJson({ hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 4, head_dim: 8 });

  it('is theta^(-2i/d) without scaling', () => {
    const inv = ropeInvFreq(parseModelConfig(base, 't'));
    expect([...inv]).toEqual([1, 0.1, 0.01, 0.001].map((v, i) => expect.closeTo(v, 15 - i)));
  });

  it('linear scaling divides every frequency by the factor', () => {
    const inv = ropeInvFreq(parseModelConfig({ ...base, rope_scaling: { type: 'linear', factor: 4 } }, 't'));
    for (const [i, v] of [0.25, 0.025, 0.0025, 0.00025].entries()) expect(inv[i] / v).toBeCloseTo(1, 14);
  });

  it('llama3 scaling matches hand-computed values', () => {
    // wavelengths 2π·[1, 10, 100, 1000]; high-freq cutoff 1000/4 = 250, low-freq cutoff 1000/1 = 1000.
    const scaling = {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 1000,
    };
    const c = parseModelConfig({ ...base, rope_scaling: scaling }, 't');
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 1000,
    });
    const inv = ropeInvFreq(c);
    // i=0,1: wavelength < 250, kept. i=3: 6283 > 1000, divided by 8.
    // i=2: smooth = (1000/(200π) − 1)/3 = 0.19718314363965116;
    //      (1 − smooth)·0.01/8 + smooth·0.01 = 0.00297535250684695.
    const hand = [1, 0.1, 0.00297535250684695, 0.000125];
    for (const [i, v] of hand.entries()) expect(Math.abs(inv[i] - v) / v).toBeLessThan(1e-12);
  });
});
