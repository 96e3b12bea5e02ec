import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { decodeValues, encodeValues } from './dtype-convert.ts';
import { CheckpointError, type TensorDType } from './safetensors-format.ts';
import { writeSafetensors } from './safetensors-writer.ts';

/** A 1-layer config whose tensors the tests write by hand. */
const SMALL_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 10,
  rms_norm_eps: 1e-5,
};

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'seesaw-ckpt-'));
}

/** Values that identify their tensor and position, exactly representable in bf16/f16. */
function patternValues(count: number, tensorIndex: number): number[] {
  return Array.from({ length: count }, (_, i) => (tensorIndex + 1) * 0.25 + (i % 64) - 32);
}

function encode(values: number[], dtype: TensorDType): Uint8Array {
  const bytes = new Uint8Array(values.length * (dtype === 'F32' ? 4 : 2));
  encodeValues(values, dtype, bytes);
  return bytes;
}

function smallTensors(dtype: TensorDType) {
  const shapes: Array<[string, number[]]> = [
    ['model.embed_tokens.weight', [10, 8]],
    ['model.layers.0.input_layernorm.weight', [8]],
    ['model.layers.0.self_attn.q_proj.weight', [8, 8]],
    ['model.layers.0.self_attn.k_proj.weight', [4, 8]],
    ['model.layers.0.self_attn.v_proj.weight', [4, 8]],
    ['model.layers.0.self_attn.o_proj.weight', [8, 8]],
    ['model.layers.0.post_attention_layernorm.weight', [8]],
    ['model.layers.0.mlp.gate_proj.weight', [12, 8]],
    ['model.layers.0.mlp.up_proj.weight', [12, 8]],
    ['model.layers.0.mlp.down_proj.weight', [8, 12]],
    ['model.norm.weight', [8]],
    ['lm_head.weight', [10, 8]],
  ];
  return shapes.map(([name, shape], i) => {
    const values = patternValues(
      shape.reduce((a, b) => a * b, 1),
      i,
    );
    return { name, dtype, shape, values, data: encode(values, dtype) };
  });
}

function writeCheckpointDir(dtype: TensorDType, configOverrides: Record<string, unknown> = {}): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...SMALL_CONFIG, ...configOverrides }));
  writeSafetensors(join(dir, 'model.safetensors'), smallTensors(dtype));
  return dir;
}

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('safetensors write/read round trip', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`round-trips ${dtype} tensors and reads byte, row and column ranges`, () => {
      const dir = writeCheckpointDir(dtype);
      const ckpt = Checkpoint.open(dir);
      ckpt.validate();
      const size = dtype === 'F32' ? 4 : 2;
      for (const t of smallTensors(dtype)) {
        const info = ckpt.info(t.name);
        expect(info).toMatchObject({ name: t.name, dtype, shape: t.shape, byteLength: t.data.byteLength });
        // The header is padded so the data block, and with it the first tensor, starts 8-byte aligned.
        if (t.name === 'model.embed_tokens.weight') expect(info.byteOffset % 8).toBe(0);
        const whole = new Uint8Array(info.byteLength);
        ckpt.readBytes(t.name, whole);
        expect([...decodeValues(whole, dtype)]).toEqual(t.values);
      }
      const gate = smallTensors(dtype)[7]; // [12, 8]
      const part = new Uint8Array(5 * size);
      ckpt.readBytes(gate.name, part, 3 * size, 8 * size);
      expect([...decodeValues(part, dtype)]).toEqual(gate.values.slice(3, 8));
      const rows = new Uint8Array(3 * 8 * size);
      ckpt.readRows(gate.name, 4, 7, rows);
      expect([...decodeValues(rows, dtype)]).toEqual(gate.values.slice(32, 56));
      const cols = new Uint8Array(12 * 3 * size);
      ckpt.readColumns(gate.name, 2, 5, cols);
      const expectedCols = Array.from({ length: 12 }, (_, r) =>
        gate.values.slice(r * 8 + 2, r * 8 + 5),
      ).flat();
      expect([...decodeValues(cols, dtype)]).toEqual(expectedCols);
      ckpt.close();
    });
  }

  it('writes an 8-byte aligned header with __metadata__ format pt', async () => {
    const dir = writeCheckpointDir('BF16');
    const { readFileSync } = await import('node:fs');
    const file = readFileSync(join(dir, 'model.safetensors'));
    const headerLength = Number(file.readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(Object.keys(header).slice(1, 3)).toEqual([
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
    ]);
    expect(header['model.embed_tokens.weight'].data_offsets).toEqual([0, 160]);
  });

  it('checks ranges and destination sizes', () => {
    const ckpt = Checkpoint.open(writeCheckpointDir('F32'));
    const name = 'model.layers.0.mlp.gate_proj.weight';
    expect(() => ckpt.readBytes(name, new Uint8Array(8), 380, 388)).toThrow(/outside \[0, 384\)/);
    expect(() => ckpt.readRows(name, 10, 13, new Uint8Array(96))).toThrow(
      /rows \[10, 13\) are outside \[0, 12\)/,
    );
    expect(() => ckpt.readColumns(name, 6, 9, new Uint8Array(1000))).toThrow(
      /columns \[6, 9\) are outside \[0, 8\)/,
    );
    expect(() => ckpt.readRows(name, 0, 2, new Uint8Array(10))).toThrow(/destination holds 10 bytes/);
    expect(() => ckpt.readRows('model.norm.weight', 0, 1, new Uint8Array(10))).toThrow(
      /expected a 2-D tensor/,
    );
    const missing = caught(() => ckpt.info('model.layers.7.mlp.up_proj.weight'));
    expect(missing).toBeInstanceOf(CheckpointError);
    expect(missing.message).toContain('missing tensor "model.layers.7.mlp.up_proj.weight"');
    ckpt.close();
    expect(() => ckpt.readBytes(name, new Uint8Array(384))).toThrow(/closed/);
  });
});

describe('sharded checkpoints', () => {
  function writeSharded(options: { dropShard?: boolean; badMap?: boolean } = {}): string {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(SMALL_CONFIG));
    const tensors = smallTensors('BF16');
    const shards = [tensors.slice(0, 5), tensors.slice(5)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      if (!(options.dropShard && i === 1)) writeSafetensors(join(dir, file), shard);
      for (const t of shard) weightMap[t.name] = file;
    });
    if (options.badMap) weightMap['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    return dir;
  }

  it('opens tensors across shards listed in the index', () => {
    const ckpt = Checkpoint.open(writeSharded());
    ckpt.validate();
    expect(ckpt.info('model.embed_tokens.weight').file).toMatch(/model-00001-of-00002\.safetensors$/);
    expect(ckpt.info('lm_head.weight').file).toMatch(/model-00002-of-00002\.safetensors$/);
    const lm = smallTensors('BF16')[11];
    const bytes = new Uint8Array(lm.data.byteLength);
    ckpt.readBytes('lm_head.weight', bytes);
    expect([...decodeValues(bytes, 'BF16')]).toEqual(lm.values);
    ckpt.close();
  });

  it('names a missing shard file', () => {
    const error = caught(() => Checkpoint.open(writeSharded({ dropShard: true })));
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toContain('shard file(s) missing');
    expect(error.message).toContain('model-00002-of-00002.safetensors');
  });

  it('rejects an index that points a tensor at the wrong shard', () => {
    expect(() => Checkpoint.open(writeSharded({ badMap: true }))).toThrow(
      /weight_map says "model\.norm\.weight" is in model-00001-of-00002\.safetensors/,
    );
  });
});

describe('validate', () => {
  it('lists every missing tensor and every wrong shape in one error', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(SMALL_CONFIG));
    const tensors = smallTensors('F32').filter(
      (t) => t.name !== 'lm_head.weight' && t.name !== 'model.norm.weight',
    );
    const q = tensors.find((t) => t.name.endsWith('q_proj.weight'))!;
    q.shape = [4, 16];
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const ckpt = Checkpoint.open(dir);
    const error = caught(() => ckpt.validate());
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toContain('missing tensor "model.norm.weight"');
    expect(error.message).toContain('missing tensor "lm_head.weight"');
    expect(error.message).toContain(
      'tensor "model.layers.0.self_attn.q_proj.weight" has shape [4,16], expected [8,8]',
    );
  });

  it('reports mixed dtypes and expects biases and no lm_head as the config says', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...SMALL_CONFIG, attention_bias: true, tie_word_embeddings: true }),
    );
    const tensors = smallTensors('F32').filter((t) => t.name !== 'lm_head.weight');
    tensors[2] = { ...tensors[2], dtype: 'BF16', data: encode(tensors[2].values, 'BF16') };
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const error = caught(() => Checkpoint.open(dir).validate());
    expect(error.message).toContain('missing tensor "model.layers.0.self_attn.q_proj.bias"');
    expect(error.message).toContain('missing tensor "model.layers.0.self_attn.v_proj.bias"');
    expect(error.message).not.toContain('lm_head');
    expect(error.message).toContain('mix dtypes BF16, F32');
  });
});
