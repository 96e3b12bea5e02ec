import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf as parseWithHuggingFace } from '@huggingface/gguf';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { generateCheckpoint } from './generate-checkpoint.ts';
import { dequantize } from './ggml-dequantize.ts';
import { quantize } from './ggml-quantize.ts';
import { ggmlType } from './ggml-types.ts';
import { convertToGguf, type GgufTargetType } from './gguf-convert.ts';
import { GgufFile } from './gguf-reader.ts';
import { loadModelConfig } from './model-location.ts';
import { readTensorF64 } from './reference-weights.ts';
import { SeesawTokenizer } from './tokenizer.ts';

let hfDir: string;
const ggufPaths = new Map<GgufTargetType, string>();

beforeAll(async () => {
  hfDir = mkdtempSync(join(tmpdir(), 'seesaw-gguf-hf-'));
  await generateCheckpoint({ shape: 'tiny', seed: 11, dtype: 'f32', outDir: hfDir });
  for (const type of ['F32', 'BF16', 'Q8_0', 'Q4_K'] as const) {
    const outPath = join(hfDir, `model-${type}.gguf`);
    convertToGguf({ modelDir: hfDir, outPath, type });
    ggufPaths.set(type, outPath);
  }
});

function readAll(checkpoint: Checkpoint, name: string): Uint8Array {
  const bytes = new Uint8Array(checkpoint.info(name).byteLength);
  checkpoint.readBytes(name, bytes);
  return bytes;
}

describe('a generated checkpoint written to GGUF and read back', () => {
  it('F32: every tensor reads back bit-exactly under its Hugging Face name (q/k rows restored)', () => {
    const hf = Checkpoint.open(hfDir);
    const g = Checkpoint.open(ggufPaths.get('F32')!);
    g.validate();
    expect(g.names().sort()).toEqual(hf.names().sort());
    for (const name of hf.names()) {
      expect(g.info(name).shape, name).toEqual(hf.info(name).shape);
      expect(g.info(name).dtype).toBe('F32');
      expect(Buffer.from(readAll(g, name)).equals(Buffer.from(readAll(hf, name))), name).toBe(true);
    }
    // Partial ranges, row and column slices go through the same mapping.
    const q = 'model.layers.1.self_attn.q_proj.weight';
    const [rows, cols] = hf.info(q).shape;
    const a = new Uint8Array(7 * cols * 4);
    const b = new Uint8Array(7 * cols * 4);
    hf.readRows(q, 29, 36, a);
    g.readRows(q, 29, 36, b);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const ca = new Uint8Array(rows * 64 * 4);
    const cb = new Uint8Array(rows * 64 * 4);
    hf.readColumns(q, 64, 128, ca);
    g.readColumns(q, 64, 128, cb);
    expect(Buffer.from(ca).equals(Buffer.from(cb))).toBe(true);
    const odd = new Uint8Array(13);
    const oddHf = new Uint8Array(13);
    g.readBytes(q, odd, 1001, 1014);
    hf.readBytes(q, oddHf, 1001, 1014);
    expect([...odd]).toEqual([...oddHf]);
    hf.close();
    g.close();
  });

  it('the model config comes back from the GGUF metadata', () => {
    const hf = loadModelConfig(hfDir);
    const g = loadModelConfig(ggufPaths.get('Q8_0')!);
    expect({ ...g, rmsNormEps: 0, torchDtype: null }).toEqual({ ...hf, rmsNormEps: 0, torchDtype: null });
    expect(g.rmsNormEps).toBe(Math.fround(hf.rmsNormEps));
  });

  it('BF16 matrices stay 16-bit; norms stay F32', () => {
    const g = Checkpoint.open(ggufPaths.get('BF16')!);
    g.validate();
    expect(g.info('model.layers.0.mlp.up_proj.weight').dtype).toBe('BF16');
    expect(g.info('model.layers.0.input_layernorm.weight').dtype).toBe('F32');
    g.close();
  });

  for (const type of ['Q8_0', 'Q4_K'] as const) {
    it(`${type}: matrices read as F32 equal to each row quantized and dequantized`, () => {
      const hf = Checkpoint.open(hfDir);
      const g = Checkpoint.open(ggufPaths.get(type)!);
      g.validate();
      const file = GgufFile.open(ggufPaths.get(type)!);
      expect(file.tensor('blk.0.attn_k.weight').ggmlType).toBe(ggmlType(type).id);
      expect(file.tensor('blk.0.attn_norm.weight').ggmlType).toBe(ggmlType('F32').id);
      file.close();
      for (const name of ['model.layers.2.self_attn.k_proj.weight', 'model.layers.0.mlp.down_proj.weight']) {
        const [, cols] = hf.info(name).shape;
        const original = Float32Array.from(readTensorF64(hf, name));
        const expected = dequantize(ggmlType(type), quantize(type, original));
        const got = new Float32Array(readAll(g, name).buffer);
        expect(got.length).toBe(expected.length);
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== expected[i]) throw new Error(`${name} row ${Math.floor(i / cols)} col ${i % cols}`);
        }
      }
      hf.close();
      g.close();
    });
  }

  it('the tokenizer stored in the file encodes and decodes like tokenizer.json', () => {
    const hf = SeesawTokenizer.load(hfDir)!;
    const g = SeesawTokenizer.load(ggufPaths.get('Q4_K')!)!;
    expect(g.vocabSize).toBe(hf.vocabSize);
    for (const text of ['Hello world', ' the quick brown fox, 42 times!', 'ünïcødé\nnew line\ttab', '']) {
      expect(g.encode(text), text).toEqual(hf.encode(text));
      expect(g.decode(hf.encode(text))).toBe(hf.decode(hf.encode(text)));
    }
  });
});

describe('an independent reader (@huggingface/gguf) on the written files', () => {
  it('sees the llama.cpp metadata keys, tensor names, ggml dims, types and offsets', async () => {
    const path = ggufPaths.get('Q4_K')!;
    const theirs = await parseWithHuggingFace(path, { allowLocalFile: true });
    const ours = GgufFile.open(path);
    expect(theirs.metadata.version).toBe(3);
    expect(theirs.metadata['general.architecture']).toBe('llama');
    for (const key of [
      'llama.block_count',
      'llama.context_length',
      'llama.embedding_length',
      'llama.feed_forward_length',
      'llama.attention.head_count',
      'llama.attention.head_count_kv',
      'llama.attention.layer_norm_rms_epsilon',
      'llama.rope.freq_base',
      'general.file_type',
      'tokenizer.ggml.model',
      'tokenizer.ggml.tokens',
      'tokenizer.ggml.merges',
      'tokenizer.ggml.bos_token_id',
    ]) {
      expect(theirs.metadata, key).toHaveProperty([key]);
    }
    expect(theirs.tensorInfos.length).toBe(ours.tensors.size);
    for (const info of theirs.tensorInfos) {
      const mine = ours.tensor(info.name);
      expect(info.shape.map(Number), info.name).toEqual(mine.dims);
      expect(info.dtype, info.name).toBe(mine.ggmlType);
      expect(Number(info.offset), info.name).toBe(mine.relativeOffset);
    }
    expect(theirs.tensorDataOffset).toBe(BigInt(ours.dataOffset));
    expect(ours.tensor('blk.3.ffn_down.weight').ggmlType).toBe(ggmlType('Q4_K').id);
    ours.close();
  });
});
