import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { ggmlType } from './ggml-types.ts';
import { type GgufValue, GgufValueType, gguf } from './gguf-format.ts';
import { GgufFile } from './gguf-reader.ts';
import { writeGguf } from './gguf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-gguf-reader-'));
let count = 0;
const path = () => join(dir, `f${count++}.gguf`);

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

/** A one-layer llama GGUF with every matrix in `matrixType` (raw bytes are zero). */
function llamaFile(arch = 'llama', matrixTypeId?: number): string {
  const h = 64;
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    [`${arch}.embedding_length`, gguf.u32(h)],
    [`${arch}.feed_forward_length`, gguf.u32(128)],
    [`${arch}.block_count`, gguf.u32(1)],
    [`${arch}.attention.head_count`, gguf.u32(4)],
    [`${arch}.attention.head_count_kv`, gguf.u32(2)],
    [`${arch}.context_length`, gguf.u32(256)],
    [`${arch}.vocab_size`, gguf.u32(64)],
  ]);
  const f32 = ggmlType('F32');
  const q8 = ggmlType('Q8_0');
  const m = (name: string, dims: number[]) => ({ name, dims, type: q8 });
  const tensors = [
    m('token_embd.weight', [h, 64]),
    { name: 'blk.0.attn_norm.weight', dims: [h], type: f32 },
    m('blk.0.attn_q.weight', [h, h]),
    m('blk.0.attn_k.weight', [h, 32]),
    m('blk.0.attn_v.weight', [h, 32]),
    m('blk.0.attn_output.weight', [h, h]),
    { name: 'blk.0.ffn_norm.weight', dims: [h], type: f32 },
    m('blk.0.ffn_gate.weight', [h, 128]),
    m('blk.0.ffn_up.weight', [h, 128]),
    m('blk.0.ffn_down.weight', [128, h]),
    { name: 'output_norm.weight', dims: [h], type: f32 },
  ].map((t) => {
    const n = t.dims.reduce((a, b) => a * b, 1);
    return { ...t, data: new Uint8Array((n / t.type.blockSize) * t.type.typeSize) };
  });
  const p = path();
  writeGguf(p, meta, tensors);
  if (matrixTypeId !== undefined) {
    // Patch the type id of blk.0.ffn_up.weight in the tensor info: it follows the name and dims.
    const bytes = readFileSync(p);
    const at = bytes.indexOf(Buffer.from('blk.0.ffn_up.weight')) + 'blk.0.ffn_up.weight'.length + 4 + 16;
    bytes.writeUInt32LE(matrixTypeId, at);
    writeFileSync(p, bytes);
  }
  return p;
}

describe('GgufFile', () => {
  it('round-trips every metadata value type, alignment and tensor placement', () => {
    const meta = new Map<string, GgufValue>([
      ['u8', { type: GgufValueType.UINT8, value: 200 }],
      ['i8', { type: GgufValueType.INT8, value: -5 }],
      ['u16', { type: GgufValueType.UINT16, value: 60000 }],
      ['i16', { type: GgufValueType.INT16, value: -30000 }],
      ['u32', gguf.u32(4_000_000_000)],
      ['i32', gguf.i32(-2_000_000_000)],
      ['f32', gguf.f32(0.5)],
      ['bool', gguf.bool(true)],
      ['str', gguf.str('héllo')],
      ['u64', gguf.u64(2 ** 40)],
      ['i64', { type: GgufValueType.INT64, value: -(2n ** 62n) }],
      ['f64', { type: GgufValueType.FLOAT64, value: Math.PI }],
      ['arr', gguf.array(GgufValueType.STRING, ['a', '', 'ccc'])],
      [
        'nested',
        {
          type: GgufValueType.ARRAY,
          elementType: GgufValueType.ARRAY,
          value: [gguf.array(GgufValueType.INT32, [1, -2])],
        },
      ],
      ['general.alignment', gguf.u32(64)],
    ]);
    const data = new Uint8Array(34 * 2).map((_, i) => i);
    const p = path();
    writeGguf(p, meta, [
      { name: 'a', dims: [3], type: ggmlType('F32'), data: new Uint8Array(12).fill(7) },
      { name: 'b', dims: [64], type: ggmlType('Q8_0'), data },
    ]);
    const file = GgufFile.open(p);
    expect([...file.metadata.entries()]).toEqual([...meta.entries()]);
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    const b = file.tensor('b');
    expect(b.relativeOffset).toBe(64);
    expect(b.byteLength).toBe(68);
    const back = new Uint8Array(68);
    file.readBytes('b', back);
    expect([...back]).toEqual([...data]);
    file.close();
  });

  it('writes and reads a header far larger than one buffer growth or read chunk (a big vocabulary)', () => {
    const tokens = Array.from({ length: 150_000 }, (_, i) => `token-${i}-${'x'.repeat(i % 13)}`);
    const meta = new Map<string, GgufValue>([
      ['tokenizer.ggml.tokens', gguf.array(GgufValueType.STRING, tokens)],
      ['after', gguf.u32(7)],
    ]);
    const p = path();
    writeGguf(p, meta, [{ name: 't', dims: [32], type: ggmlType('Q8_0'), data: new Uint8Array(34).fill(3) }]);
    const file = GgufFile.open(p);
    expect(file.metadata.get('tokenizer.ggml.tokens')!.value).toEqual(tokens);
    expect(file.metadata.get('after')!.value).toBe(7);
    const back = new Uint8Array(34);
    file.readBytes('t', back);
    expect([...back]).toEqual(new Array(34).fill(3));
    file.close();
  });

  it('names the problem: bad magic, version, truncation, unsupported type and architecture', () => {
    const good = llamaFile();
    const bytes = readFileSync(good);
    const bad = path();
    writeFileSync(bad, Buffer.concat([Buffer.from('GGML'), bytes.subarray(4)]));
    expect(caught(() => GgufFile.open(bad)).message).toContain('not a GGUF file');
    const v2 = Buffer.from(bytes);
    v2.writeUInt32LE(2, 4);
    writeFileSync(bad, v2);
    expect(caught(() => GgufFile.open(bad)).message).toContain('GGUF version 2 is not supported');
    writeFileSync(bad, bytes.subarray(0, bytes.length - 100));
    expect(caught(() => GgufFile.open(bad)).message).toMatch(/tensor "output_norm.weight".*truncated/);
    writeFileSync(bad, bytes.subarray(0, 200));
    expect(caught(() => GgufFile.open(bad)).message).toContain('unexpected end of file');

    const q2k = llamaFile('llama', 10);
    expect(caught(() => Checkpoint.open(q2k)).message).toMatch(
      /tensor "blk.0.ffn_up.weight": ggml type Q2_K is not supported/,
    );
    expect(caught(() => Checkpoint.open(llamaFile('falcon'))).message).toContain(
      'metadata "general.architecture" "falcon" is not supported',
    );
  });

  it('a llama file with no tokenizer and tied embeddings opens as a checkpoint', () => {
    const ckpt = Checkpoint.open(llamaFile());
    ckpt.validate();
    expect(ckpt.config.tieWordEmbeddings).toBe(true);
    expect(ckpt.config.numKvHeads).toBe(2);
    expect(ckpt.info('model.layers.0.mlp.down_proj.weight').shape).toEqual([64, 128]);
    ckpt.close();
  });
});
