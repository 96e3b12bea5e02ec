import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCheckpoint } from './generate-checkpoint.ts';
import { convertToGguf } from './gguf-convert.ts';
import { resolveKvDtype } from './kv-dtype.ts';

let workDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-kv-dtype-'));
  for (const dtype of ['bf16', 'f16', 'f32'] as const)
    await generateCheckpoint({ shape: 'tiny', seed: 3, dtype, outDir: join(workDir, dtype) });
  convertToGguf({ modelDir: join(workDir, 'bf16'), outPath: join(workDir, 'q4k.gguf'), type: 'Q4_K' });
  convertToGguf({ modelDir: join(workDir, 'bf16'), outPath: join(workDir, 'q8.gguf'), type: 'Q8_0' });
  convertToGguf({ modelDir: join(workDir, 'f16'), outPath: join(workDir, 'f16.gguf'), type: 'F16' });
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('resolveKvDtype', () => {
  it("auto is the weights' 16-bit type; f32 weights keep f32, quantized GGUF gets f16", () => {
    expect(resolveKvDtype('auto', join(workDir, 'bf16'))).toBe('bf16');
    expect(resolveKvDtype('auto', join(workDir, 'f16'))).toBe('f16');
    expect(resolveKvDtype('auto', join(workDir, 'f32'))).toBe('f32');
    expect(resolveKvDtype('auto', join(workDir, 'f16.gguf'))).toBe('f16');
    expect(resolveKvDtype('auto', join(workDir, 'q8.gguf'))).toBe('f16');
    expect(resolveKvDtype('auto', join(workDir, 'q4k.gguf'))).toBe('f16');
  });

  it('keeps a concrete dtype without reading the checkpoint', () => {
    expect(resolveKvDtype('f32', join(workDir, 'bf16'))).toBe('f32');
    expect(resolveKvDtype('bf16', '/nonexistent')).toBe('bf16');
  });
});
