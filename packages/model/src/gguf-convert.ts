import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Checkpoint } from './checkpoint.ts';
import { encodeF32Array } from './dtype-convert.ts';
import { quantize } from './ggml-quantize.ts';
import { type GgmlTypeInfo, type GgmlTypeName, ggmlType } from './ggml-types.ts';
import { type GgufValue, gguf } from './gguf-format.ts';
import { LLAMA_FILE_TYPE, llamaMetadata } from './gguf-llama-config.ts';
import { ggufTensorName, hfRowOfGgufRow, permutedHeads } from './gguf-llama-tensors.ts';
import { byteLevelBpeMetadata } from './gguf-tokenizer.ts';
import { GgufStreamWriter, type GgufTensorSpec } from './gguf-writer.ts';
import type { ModelConfig } from './model-config.ts';
import { readTensorF64 } from './reference-weights.ts';
import { CheckpointError } from './safetensors-format.ts';

/** Tensor types a converted file's matrices can have. */
export const GGUF_TARGET_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K'] as const;
export type GgufTargetType = (typeof GGUF_TARGET_TYPES)[number];

/**
 * The type a matrix with rows of `cols` elements gets: the target when its rows are whole blocks,
 * else (as llama.cpp does for k-quants) Q8_0 when they are whole 32-blocks, else F16.
 */
export function matrixTypeFor(target: GgufTargetType, cols: number): GgmlTypeInfo {
  const wanted = ggmlType(target);
  if (cols % wanted.blockSize === 0) return wanted;
  return cols % 32 === 0 ? ggmlType('Q8_0') : ggmlType('F16');
}

function encodeRows(type: GgmlTypeName, values: Float32Array): Uint8Array {
  if (type === 'Q8_0' || type === 'Q4_0' || type === 'Q4_K') return quantize(type, values);
  const out = new Uint8Array(values.length * (type === 'F32' ? 4 : 2));
  encodeF32Array(values, type === 'F32' ? 'F32' : type === 'F16' ? 'F16' : 'BF16', out);
  return out;
}

/** The checkpoint's tokenizer as GGUF metadata, or "no_vocab" when it has none. */
function tokenizerMetadata(dir: string, config: ModelConfig): Map<string, GgufValue> {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    const m = new Map<string, GgufValue>([['tokenizer.ggml.model', gguf.str('no_vocab')]]);
    if (config.bosTokenId !== null) m.set('tokenizer.ggml.bos_token_id', gguf.u32(config.bosTokenId));
    if (config.eosTokenIds.length > 0) m.set('tokenizer.ggml.eos_token_id', gguf.u32(config.eosTokenIds[0]));
    return m;
  }
  const configPath = join(dir, 'tokenizer_config.json');
  return byteLevelBpeMetadata(
    JSON.parse(readFileSync(jsonPath, 'utf8')),
    existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {},
    config.vocabSize,
    jsonPath,
  );
}

export interface ConvertToGgufOptions {
  /** Hugging Face checkpoint directory. */
  modelDir: string;
  outPath: string;
  type: GgufTargetType;
  /** Progress lines (one a tensor); none by default. */
  log?: (line: string) => void;
}

/**
 * Writes a llama GGUF v3 file from a Hugging Face checkpoint, laid out as llama.cpp's converter
 * lays it out: llama.cpp tensor names, ggml dims, q/k rows interleaved for its rope, norms F32,
 * matrices of the target type, the tokenizer in the metadata. Written to a temporary name and
 * renamed, so a failed run leaves no half file.
 */
export function convertToGguf(options: ConvertToGgufOptions): void {
  const checkpoint = Checkpoint.open(options.modelDir);
  const temp = `${options.outPath}.partial`;
  let writer: GgufStreamWriter | undefined;
  try {
    checkpoint.validate();
    const { config } = checkpoint;
    const metadata = llamaMetadata(config, basename(options.modelDir), LLAMA_FILE_TYPE[options.type]);
    for (const [k, v] of tokenizerMetadata(options.modelDir, config)) metadata.set(k, v);
    const names = checkpoint.names().filter((n) => ggufTensorName(n) !== null);
    const order = (n: string) => (n.startsWith('model.embed') ? 0 : n.startsWith('model.layers.') ? 1 : 2);
    names.sort((a, b) => order(a) - order(b) || layerOf(a) - layerOf(b));
    const specs: GgufTensorSpec[] = names.map((name) => {
      const { shape } = checkpoint.info(name);
      return {
        name: ggufTensorName(name)!,
        dims: [...shape].reverse(),
        type: shape.length === 2 ? matrixTypeFor(options.type, shape[1]) : ggmlType('F32'),
      };
    });
    writer = new GgufStreamWriter(temp, metadata, specs);
    names.forEach((name, i) => {
      const values = ggufOrderedValues(checkpoint, name);
      writer!.write(encodeRows(specs[i].type.name, values));
      options.log?.(`${specs[i].name} ${specs[i].type.name} [${specs[i].dims.join(', ')}]`);
    });
    writer.close();
    renameSync(temp, options.outPath);
  } catch (error) {
    writer?.abort();
    rmSync(temp, { force: true });
    throw error;
  } finally {
    checkpoint.close();
  }
}

function layerOf(name: string): number {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  return m === null ? 0 : Number(m[1]);
}

/** A tensor's values in GGUF row order (q/k rows interleaved per head), as float32. */
function ggufOrderedValues(checkpoint: Checkpoint, name: string): Float32Array {
  const values = readTensorF64(checkpoint, name);
  const heads = permutedHeads(name, checkpoint.config);
  const { shape } = checkpoint.info(name);
  if (heads === null) return Float32Array.from(values);
  const rows = shape[0];
  const cols = shape.length === 2 ? shape[1] : 1;
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new CheckpointError(`"${name}": ${rows} rows do not split into ${heads} heads of even size`);
  }
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const from = hfRowOfGgufRow(r, rows / heads);
    for (let c = 0; c < cols; c++) out[r * cols + c] = values[from * cols + c];
  }
  return out;
}
