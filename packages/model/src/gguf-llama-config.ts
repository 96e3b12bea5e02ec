import { type GgufTensorInfo, type GgufValue, gguf } from './gguf-format.ts';
import { type ModelConfig, ModelConfigError, parseModelConfig } from './model-config.ts';

/** The llama.cpp architectures we run (tensor layout and rope as "llama"). */
const SUPPORTED_GGUF_ARCHITECTURES = ['llama'];

/** Reads typed metadata values, naming the file and key in every error. */
export class GgufMetadataReader {
  constructor(
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly source: string,
  ) {}

  fail(key: string, problem: string): never {
    throw new ModelConfigError(`${this.source}: metadata "${key}" ${problem}`);
  }

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  number(key: string): number | undefined {
    const entry = this.metadata.get(key);
    if (entry === undefined) return undefined;
    if (typeof entry.value !== 'number') this.fail(key, `must be a number, got ${String(entry.value)}`);
    return entry.value;
  }

  string(key: string): string | undefined {
    const entry = this.metadata.get(key);
    if (entry === undefined) return undefined;
    if (typeof entry.value !== 'string') this.fail(key, 'must be a string');
    return entry.value;
  }

  boolean(key: string): boolean | undefined {
    const entry = this.metadata.get(key);
    if (entry === undefined) return undefined;
    if (typeof entry.value !== 'boolean') this.fail(key, 'must be a bool');
    return entry.value;
  }

  /** An array of scalars of one JS type. */
  array<T extends string | number>(key: string, kind: 'string' | 'number'): T[] | undefined {
    const entry = this.metadata.get(key);
    if (entry === undefined) return undefined;
    if (!Array.isArray(entry.value) || entry.value.some((v) => typeof v !== kind)) {
      this.fail(key, `must be an array of ${kind}s`);
    }
    return entry.value as T[];
  }
}

/**
 * The model config of a llama-architecture GGUF file, from its `llama.*` hyperparameters and
 * tensor list, checked by the same rules as a config.json (every error names the file).
 */
export function ggufModelConfig(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: ReadonlyMap<string, GgufTensorInfo>,
  source: string,
): ModelConfig {
  const meta: GgufMetadataReader = new GgufMetadataReader(metadata, source);
  const arch = meta.string('general.architecture');
  if (arch === undefined) meta.fail('general.architecture', 'is missing');
  if (!SUPPORTED_GGUF_ARCHITECTURES.includes(arch)) {
    meta.fail(
      'general.architecture',
      `"${arch}" is not supported (supported: ${SUPPORTED_GGUF_ARCHITECTURES.join(', ')})`,
    );
  }
  if (tensors.has('rope_freqs.weight')) {
    throw new ModelConfigError(
      `${source}: tensor "rope_freqs.weight" (llama-3 rope frequency factors) is not supported`,
    );
  }
  const key = (k: string) => `${arch}.${k}`;
  const scalingType = meta.string(key('rope.scaling.type'));
  let ropeScaling: Record<string, unknown> | null = null;
  if (scalingType === 'linear') {
    ropeScaling = { rope_type: 'linear', factor: meta.number(key('rope.scaling.factor')) };
  } else if (scalingType !== undefined && scalingType !== 'none') {
    meta.fail(key('rope.scaling.type'), `"${scalingType}" is not supported (supported: none, linear)`);
  }
  const hidden = meta.number(key('embedding_length'));
  const heads = meta.number(key('attention.head_count'));
  const embedding = tensors.get('token_embd.weight');
  const tokens = meta.array<string>('tokenizer.ggml.tokens', 'string');
  const vocabSize = meta.number(key('vocab_size')) ?? tokens?.length ?? embedding?.dims[1];
  const headDim = meta.number(key('attention.key_length'));
  const ropeDims = meta.number(key('rope.dimension_count'));
  if (ropeDims !== undefined && ropeDims !== (headDim ?? (hidden ?? 0) / (heads ?? 1))) {
    meta.fail(key('rope.dimension_count'), `${ropeDims} (partial rotary embeddings) is not supported`);
  }
  const json: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    hidden_size: hidden,
    intermediate_size: meta.number(key('feed_forward_length')),
    num_hidden_layers: meta.number(key('block_count')),
    num_attention_heads: heads,
    num_key_value_heads: meta.number(key('attention.head_count_kv')),
    head_dim: headDim,
    vocab_size: vocabSize,
    rms_norm_eps: meta.number(key('attention.layer_norm_rms_epsilon')),
    rope_theta: meta.number(key('rope.freq_base')),
    rope_scaling: ropeScaling,
    max_position_embeddings: meta.number(key('context_length')),
    attention_bias: tensors.has('blk.0.attn_q.bias'),
    tie_word_embeddings: !tensors.has('output.weight'),
    bos_token_id: meta.number('tokenizer.ggml.bos_token_id'),
    eos_token_id: meta.number('tokenizer.ggml.eos_token_id'),
  };
  // GGUF names the fields differently; report a missing required one by its GGUF key.
  for (const [field, ggufKey] of [
    ['hidden_size', 'embedding_length'],
    ['intermediate_size', 'feed_forward_length'],
    ['num_hidden_layers', 'block_count'],
    ['num_attention_heads', 'attention.head_count'],
  ]) {
    if (json[field] === undefined) meta.fail(key(ggufKey), 'is missing (required)');
  }
  if (vocabSize === undefined) meta.fail(key('vocab_size'), 'is missing and there is no vocabulary to count');
  return parseModelConfig(json, source);
}

/** llama.cpp's llama_ftype for a file whose matrices are mostly of one type. */
export const LLAMA_FILE_TYPE: Record<string, number> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 7,
  Q4_K: 14, // MOSTLY_Q4_K_S: every matrix Q4_K
  BF16: 32,
};

/** The `general.*` and `llama.*` metadata llama.cpp reads for a Llama model. */
export function llamaMetadata(config: ModelConfig, name: string, fileType: number): Map<string, GgufValue> {
  const m = new Map<string, GgufValue>();
  m.set('general.architecture', gguf.str('llama'));
  m.set('general.name', gguf.str(name));
  m.set('general.file_type', gguf.u32(fileType));
  m.set('general.quantization_version', gguf.u32(2));
  m.set('general.alignment', gguf.u32(32));
  m.set('llama.context_length', gguf.u32(config.maxPositionEmbeddings));
  m.set('llama.embedding_length', gguf.u32(config.hiddenSize));
  m.set('llama.block_count', gguf.u32(config.numLayers));
  m.set('llama.feed_forward_length', gguf.u32(config.intermediateSize));
  m.set('llama.attention.head_count', gguf.u32(config.numHeads));
  m.set('llama.attention.head_count_kv', gguf.u32(config.numKvHeads));
  m.set('llama.attention.layer_norm_rms_epsilon', gguf.f32(config.rmsNormEps));
  m.set('llama.rope.freq_base', gguf.f32(config.ropeTheta));
  m.set('llama.rope.dimension_count', gguf.u32(config.headDim));
  m.set('llama.attention.key_length', gguf.u32(config.headDim));
  m.set('llama.attention.value_length', gguf.u32(config.headDim));
  m.set('llama.vocab_size', gguf.u32(config.vocabSize));
  if (config.ropeScaling !== null && config.ropeScaling.type === 'linear') {
    m.set('llama.rope.scaling.type', gguf.str('linear'));
    m.set('llama.rope.scaling.factor', gguf.f32(config.ropeScaling.factor));
  } else if (config.ropeScaling !== null && config.ropeScaling.type !== 'default') {
    throw new ModelConfigError(
      `${name}: rope_scaling ${config.ropeScaling.type} cannot be written to GGUF yet (supported: linear)`,
    );
  }
  return m;
}
