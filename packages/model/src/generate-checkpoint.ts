import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildByteLevelBpeTokenizer } from './byte-level-bpe.ts';
import { initDistribution } from './checkpoint-init.ts';
import { encodeF32Array } from './dtype-convert.ts';
import { type ExpectedTensor, expectedTensors } from './expected-tensors.ts';
import { type ModelConfig, parseModelConfig } from './model-config.ts';
import { MODEL_SHAPES, type ModelShapeName } from './model-shapes.ts';
import { seedFor, Xoshiro128 } from './prng.ts';
import { numElements, type TensorDType } from './safetensors-format.ts';
import { SafetensorsStreamWriter } from './safetensors-writer.ts';

export interface GenerateCheckpointOptions {
  shape: ModelShapeName;
  seed: number;
  dtype: 'bf16' | 'f16' | 'f32';
  outDir: string;
  /** Split into model-0000i-of-0000n.safetensors + index.json when the weights exceed this. */
  maxShardBytes?: number;
  tieWordEmbeddings?: boolean;
  attentionBias?: boolean;
}

const DTYPES = {
  bf16: { tensor: 'BF16', torch: 'bfloat16' },
  f16: { tensor: 'F16', torch: 'float16' },
  f32: { tensor: 'F32', torch: 'float32' },
} as const;

/** Elements generated per chunk: bounds memory for the 65M-element embeddings of medium. */
const CHUNK_ELEMENTS = 1 << 20;

/** The config.json object written for a generated checkpoint. */
export function generatedConfigJson(opts: GenerateCheckpointOptions): Record<string, unknown> {
  const s = MODEL_SHAPES[opts.shape];
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocab,
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    rope_scaling: null,
    max_position_embeddings: s.maxPositionEmbeddings,
    hidden_act: 'silu',
    attention_bias: opts.attentionBias ?? false,
    mlp_bias: false,
    tie_word_embeddings: opts.tieWordEmbeddings ?? false,
    bos_token_id: s.bosTokenId,
    eos_token_id: s.eosTokenId,
    torch_dtype: DTYPES[opts.dtype].torch,
  };
}

/** Greedy in-order packing; a tensor bigger than the limit gets a shard of its own. */
function planShards(
  tensors: ExpectedTensor[],
  elementBytes: number,
  maxShardBytes: number,
): ExpectedTensor[][] {
  const shards: ExpectedTensor[][] = [[]];
  let used = 0;
  for (const t of tensors) {
    const bytes = numElements(t.shape) * elementBytes;
    if (used > 0 && used + bytes > maxShardBytes) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1].push(t);
    used += bytes;
  }
  return shards;
}

/** Draws one tensor chunk by chunk from its own seeded stream and streams the encoded bytes. */
function writeRandomTensor(
  writer: SafetensorsStreamWriter,
  tensor: ExpectedTensor,
  dtype: TensorDType,
  config: ModelConfig,
  seed: number,
): void {
  const { mean, std } = initDistribution(tensor.name, tensor.shape, config);
  const rng = new Xoshiro128(seedFor(seed, tensor.name));
  const total = numElements(tensor.shape);
  const elementBytes = dtype === 'F32' ? 4 : 2;
  const values = new Float32Array(Math.min(total, CHUNK_ELEMENTS));
  const bytes = new Uint8Array(values.length * elementBytes);
  for (let done = 0; done < total; done += values.length) {
    const n = Math.min(values.length, total - done);
    const chunk = values.subarray(0, n);
    rng.fillUniform(chunk, std, mean);
    encodeF32Array(chunk, dtype, bytes);
    writer.write(bytes.subarray(0, n * elementBytes));
  }
}

function removeStaleWeights(outDir: string): void {
  for (const f of readdirSync(outDir)) {
    if (
      f === 'model.safetensors' ||
      f === 'model.safetensors.index.json' ||
      /^model-\d+-of-\d+\.safetensors$/.test(f)
    ) {
      rmSync(join(outDir, f));
    }
  }
}

/**
 * Writes a deterministic random checkpoint in Hugging Face layout: config.json,
 * generation_config.json, model.safetensors (or shards + model.safetensors.index.json),
 * tokenizer.json and tokenizer_config.json. Each tensor comes from its own stream seeded by
 * (seed, tensor name), so values do not depend on sharding. Same options -> same bytes.
 */
export async function generateCheckpoint(opts: GenerateCheckpointOptions): Promise<void> {
  if (!Object.hasOwn(MODEL_SHAPES, opts.shape)) throw new Error(`unknown model shape "${opts.shape}"`);
  if (!Object.hasOwn(DTYPES, opts.dtype)) throw new Error(`unknown dtype "${opts.dtype}" (bf16, f16, f32)`);
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`seed must be an integer, got ${opts.seed}`);
  const configJson = generatedConfigJson(opts);
  const config = parseModelConfig(configJson, 'generated config');
  const dtype = DTYPES[opts.dtype].tensor;
  const elementBytes = dtype === 'F32' ? 4 : 2;
  mkdirSync(opts.outDir, { recursive: true });
  removeStaleWeights(opts.outDir);
  writeFileSync(join(opts.outDir, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`);
  const generation = { bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenIds[0] };
  writeFileSync(join(opts.outDir, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
  const { tokenizerJson, tokenizerConfig } = buildByteLevelBpeTokenizer(
    config.vocabSize,
    config.maxPositionEmbeddings,
  );
  writeFileSync(join(opts.outDir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(join(opts.outDir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);

  const tensors = expectedTensors(config);
  const shards =
    opts.maxShardBytes === undefined ? [tensors] : planShards(tensors, elementBytes, opts.maxShardBytes);
  const n = shards.length;
  const fileName = (i: number) =>
    n === 1
      ? 'model.safetensors'
      : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let i = 0; i < n; i++) {
    const specs = shards[i].map((t) => ({ name: t.name, dtype, shape: t.shape }));
    const writer = new SafetensorsStreamWriter(join(opts.outDir, fileName(i)), specs);
    try {
      for (const t of shards[i]) {
        writeRandomTensor(writer, t, dtype, config, opts.seed);
        weightMap[t.name] = fileName(i);
        totalSize += numElements(t.shape) * elementBytes;
        // Let other work on the event loop run between tensors of a long generation.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      writer.abort();
      throw error;
    }
    writer.close();
  }
  if (n > 1) {
    const sortedMap = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
    writeFileSync(join(opts.outDir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  }
}
