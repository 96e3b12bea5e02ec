import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { CheckpointError } from './safetensors-format.ts';
import { writeSafetensors } from './safetensors-writer.ts';

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  vocab_size: 10,
};

function dirWithConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-bad-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
  return dir;
}

/** A safetensors file with an arbitrary header text and `dataBytes` zero bytes of data. */
function writeRaw(dir: string, headerText: string, dataBytes: number, lengthOverride?: bigint): void {
  const header = Buffer.from(headerText, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(header.length));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([prefix, header, Buffer.alloc(dataBytes)]));
}

function openError(dir: string): Error {
  try {
    Checkpoint.open(dir).close();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return error as Error;
  }
  throw new Error('expected Checkpoint.open to fail');
}

describe('safetensors error reporting', () => {
  it('unknown dtype names the tensor and the dtype', () => {
    const dir = dirWithConfig();
    writeRaw(
      dir,
      JSON.stringify({ 'model.norm.weight': { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }),
      8,
    );
    expect(openError(dir).message).toMatch(/tensor "model\.norm\.weight": unknown dtype "I64"/);
  });

  it('truncated file: data shorter than the header says', () => {
    const dir = dirWithConfig();
    const values = new Uint8Array(4 * 8 * 2);
    writeSafetensors(join(dir, 'model.safetensors'), [
      { name: 'a', dtype: 'BF16', shape: [8], data: new Uint8Array(16) },
      { name: 'b', dtype: 'BF16', shape: [4, 8], data: values },
    ]);
    const path = join(dir, 'model.safetensors');
    truncateSync(path, readFileSync(path).length - 10);
    expect(openError(dir).message).toMatch(
      /tensor "b": data_offsets \[16, 80\) run past the end of the data \(70 bytes\); file is truncated/,
    );
  });

  it('absurd header length', () => {
    const dir = dirWithConfig();
    writeRaw(dir, '{}', 0, 1n << 40n);
    expect(openError(dir).message).toMatch(/header length 1099511627776 is absurd/);
    writeRaw(dir, '{}', 0, 0n);
    expect(openError(dir).message).toMatch(/header length 0 is absurd/);
    writeFileSync(join(dir, 'model.safetensors'), Buffer.from([1, 2, 3]));
    expect(openError(dir).message).toMatch(/too short for a safetensors header/);
  });

  it('header that is not JSON, or not an object', () => {
    const dir = dirWithConfig();
    writeRaw(dir, '{"a": {"dtype": "F32", ', 0);
    expect(openError(dir).message).toMatch(/header is not valid JSON/);
    writeRaw(dir, '[1, 2]', 0);
    expect(openError(dir).message).toMatch(/header must be a JSON object/);
  });

  it('overlapping offsets name both tensors', () => {
    const dir = dirWithConfig();
    const header = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    };
    writeRaw(dir, JSON.stringify(header), 24);
    expect(openError(dir).message).toMatch(/tensors "a" \[0, 16\) and "b" \[8, 24\) overlap/);
  });

  it('offsets that disagree with shape, run backwards or are malformed', () => {
    const dir = dirWithConfig();
    writeRaw(dir, JSON.stringify({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 16] } }), 16);
    expect(openError(dir).message).toMatch(
      /tensor "a": data_offsets \[0, 16\) hold 16 bytes but shape \[4\] F16 needs 8/,
    );
    writeRaw(dir, JSON.stringify({ a: { dtype: 'F16', shape: [4], data_offsets: [16, 8] } }), 16);
    expect(openError(dir).message).toMatch(/tensor "a": data_offsets \[16, 8\)/);
    writeRaw(dir, JSON.stringify({ a: { dtype: 'F16', shape: [4], data_offsets: [0] } }), 16);
    expect(openError(dir).message).toMatch(/tensor "a": data_offsets \[0\] is not \[begin, end\]/);
    writeRaw(dir, JSON.stringify({ a: { dtype: 'F16', shape: [-4], data_offsets: [0, 8] } }), 16);
    expect(openError(dir).message).toMatch(/tensor "a": shape \[-4\] is not a list of non-negative integers/);
  });

  it('out-of-range offsets', () => {
    const dir = dirWithConfig();
    writeRaw(dir, JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [100, 108] } }), 16);
    expect(openError(dir).message).toMatch(
      /tensor "a": data_offsets \[100, 108\) run past the end of the data \(16 bytes\)/,
    );
  });

  it('a directory without weights, and an index with a broken weight_map', () => {
    const dir = dirWithConfig();
    expect(openError(dir).message).toMatch(
      /neither model\.safetensors nor model\.safetensors\.index\.json found/,
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: '../etc/passwd' } }),
    );
    expect(openError(dir).message).toMatch(/weight_map entry "a" has bad file name/);
    writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": 3}');
    expect(openError(dir).message).toMatch(/"weight_map" must be an object/);
  });

  it('writeSafetensors rejects data of the wrong size and duplicate names', () => {
    const dir = dirWithConfig();
    const path = join(dir, 'x.safetensors');
    expect(() =>
      writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(8) }]),
    ).toThrow(/tensor "a" data is 8 bytes, shape \[3\] F32 needs 12/);
    const t = { name: 'a', dtype: 'F16' as const, shape: [2], data: new Uint8Array(4) };
    expect(() => writeSafetensors(path, [t, t])).toThrow(/duplicate tensor name "a"/);
  });
});
