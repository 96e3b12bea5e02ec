import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RopeScaling {
  type: 'llama3' | 'linear' | 'default';
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface ModelConfig {
  /** e.g. 'LlamaForCausalLM', 'Qwen2ForCausalLM', 'MistralForCausalLM'. */
  architecture: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** config.head_dim ?? hidden_size / num_attention_heads */
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  /** q/k/v projection biases (Qwen2 always has them). */
  attentionBias: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  torchDtype: string | null;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'MistralForCausalLM',
] as const;

const ARCHITECTURE_BY_MODEL_TYPE: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  mistral: 'MistralForCausalLM',
};

type Json = Record<string, unknown>;

/** Reads fields of one JSON object, naming the source and field in every error. */
class FieldReader {
  constructor(
    private readonly json: Json,
    private readonly source: string,
  ) {}

  fail(field: string, problem: string): never {
    throw new ModelConfigError(`${this.source}: field "${field}" ${problem}`);
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  raw(field: string): unknown {
    return this.json[field];
  }

  positiveInt(field: string, fallback?: number): number {
    const value = this.json[field];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, 'is missing (required)');
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      this.fail(field, `must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  positiveNumber(field: string, fallback?: number): number {
    const value = this.json[field];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, 'is missing (required)');
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      this.fail(field, `must be a positive finite number, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  boolean(field: string, fallback: boolean): boolean {
    const value = this.json[field];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  optionalTokenId(field: string): number | null {
    const value = this.json[field];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      this.fail(field, `must be a non-negative integer token id, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  tokenIdList(field: string): number[] {
    const value = this.json[field];
    if (value === undefined || value === null) return [];
    const list = Array.isArray(value) ? value : [value];
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        this.fail(field, `must be a token id or a list of token ids, got ${JSON.stringify(value)}`);
      }
    }
    return list as number[];
  }
}

function parseArchitecture(fields: FieldReader): string {
  const architectures = fields.raw('architectures');
  const modelType = fields.raw('model_type');
  let architecture: string | undefined;
  if (architectures !== undefined && architectures !== null) {
    if (!Array.isArray(architectures) || architectures.length === 0 || typeof architectures[0] !== 'string') {
      fields.fail('architectures', `must be a non-empty list of names, got ${JSON.stringify(architectures)}`);
    }
    architecture = architectures[0];
  } else if (typeof modelType === 'string') {
    architecture = ARCHITECTURE_BY_MODEL_TYPE[modelType];
    if (architecture === undefined) {
      fields.fail(
        'model_type',
        `"${modelType}" is not supported (supported: ${Object.keys(ARCHITECTURE_BY_MODEL_TYPE).join(', ')})`,
      );
    }
  } else {
    fields.fail('architectures', 'is missing (and no model_type to infer it from)');
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
    fields.fail(
      'architectures',
      `"${architecture}" is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
  return architecture;
}

function parseRopeScaling(fields: FieldReader, source: string): RopeScaling | null {
  const value = fields.raw('rope_scaling');
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    fields.fail('rope_scaling', `must be an object or null, got ${JSON.stringify(value)}`);
  }
  const scaling = new FieldReader(value as Json, `${source}: rope_scaling`);
  const type = scaling.raw('rope_type') ?? scaling.raw('type');
  if (type === 'default') return { type: 'default', factor: 1 };
  if (type === 'linear') return { type: 'linear', factor: scaling.positiveNumber('factor') };
  if (type === 'llama3') {
    const result: RopeScaling = {
      type: 'llama3',
      factor: scaling.positiveNumber('factor'),
      lowFreqFactor: scaling.positiveNumber('low_freq_factor'),
      highFreqFactor: scaling.positiveNumber('high_freq_factor'),
      originalMaxPositionEmbeddings: scaling.positiveInt('original_max_position_embeddings'),
    };
    if (result.highFreqFactor! <= result.lowFreqFactor!) {
      scaling.fail('high_freq_factor', `must be greater than low_freq_factor (${result.lowFreqFactor})`);
    }
    return result;
  }
  fields.fail(
    'rope_scaling',
    `type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`,
  );
}

/** Rejects features of the accepted architectures that the engine does not implement. */
function rejectUnsupportedFeatures(fields: FieldReader, maxPositionEmbeddings: number): void {
  const act = fields.raw('hidden_act');
  if (act !== undefined && act !== 'silu')
    fields.fail('hidden_act', `must be "silu", got ${JSON.stringify(act)}`);
  if (fields.boolean('mlp_bias', false)) fields.fail('mlp_bias', 'true is not supported');
  // Qwen2 configs carry sliding_window but switch it off with use_sliding_window: false.
  if (fields.raw('use_sliding_window') !== false && fields.has('sliding_window')) {
    const window = fields.positiveInt('sliding_window');
    if (window < maxPositionEmbeddings) {
      fields.fail(
        'sliding_window',
        `${window} < max_position_embeddings: sliding-window attention is not supported`,
      );
    }
  }
}

/** Validates a Hugging Face config.json object; every error names `source` and the field. */
export function parseModelConfig(json: unknown, source: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelConfigError(`${source}: config must be a JSON object`);
  }
  const fields = new FieldReader(json as Json, source);
  const architecture = parseArchitecture(fields);
  const hiddenSize = fields.positiveInt('hidden_size');
  const numHeads = fields.positiveInt('num_attention_heads');
  const numKvHeads = fields.positiveInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    fields.fail('num_key_value_heads', `(${numKvHeads}) must divide num_attention_heads (${numHeads})`);
  }
  if (!fields.has('head_dim') && hiddenSize % numHeads !== 0) {
    fields.fail('hidden_size', `(${hiddenSize}) must be divisible by num_attention_heads (${numHeads})`);
  }
  const headDim = fields.positiveInt('head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) fields.fail('head_dim', `must be even for rotary embeddings, got ${headDim}`);
  const maxPositionEmbeddings = fields.positiveInt('max_position_embeddings', 2048);
  rejectUnsupportedFeatures(fields, maxPositionEmbeddings);
  const vocabSize = fields.positiveInt('vocab_size');
  const bosTokenId = fields.optionalTokenId('bos_token_id');
  const eosTokenIds = fields.tokenIdList('eos_token_id');
  if (bosTokenId !== null && bosTokenId >= vocabSize) {
    fields.fail('bos_token_id', `token id ${bosTokenId} is outside vocab_size ${vocabSize}`);
  }
  for (const id of eosTokenIds) {
    if (id >= vocabSize) fields.fail('eos_token_id', `token id ${id} is outside vocab_size ${vocabSize}`);
  }
  const torchDtype = fields.raw('torch_dtype') ?? fields.raw('dtype');
  return {
    architecture,
    hiddenSize,
    intermediateSize: fields.positiveInt('intermediate_size'),
    numLayers: fields.positiveInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: fields.positiveNumber('rms_norm_eps', 1e-6),
    ropeTheta: fields.positiveNumber('rope_theta', 10000),
    ropeScaling: parseRopeScaling(fields, source),
    maxPositionEmbeddings,
    // Qwen2 always has q/k/v biases and its config does not say so.
    attentionBias:
      architecture === 'Qwen2ForCausalLM' ||
      fields.raw('model_type') === 'qwen2' ||
      fields.boolean('attention_bias', false),
    tieWordEmbeddings: fields.boolean('tie_word_embeddings', false),
    bosTokenId,
    eosTokenIds,
    torchDtype: typeof torchDtype === 'string' ? torchDtype : null,
  };
}

/** The config.json of a Hugging Face checkpoint directory. */
export function loadConfigJson(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ModelConfigError(`${path}: cannot read config (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelConfigError(`${path}: invalid JSON (${(error as Error).message})`);
  }
  return parseModelConfig(json, path);
}
