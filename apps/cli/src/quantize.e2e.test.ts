/**
 * `seesaw quantize` writes a GGUF file that `seesaw run` takes as --model (tokenizer from the
 * file, text prompts), and `seesaw info` names the int8 kernel path.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSeesaw } from '../test/e2e-test-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-quantize-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('seesaw quantize, run --model FILE.gguf, info', () => {
  it('quantizes a generated model to q4_0 and completes text prompts with it', async () => {
    const hf = join(dir, 'hf');
    expect((await runSeesaw(['gen-model', '--shape', 'tiny', '--out', hf])).status).toBe(0);
    const gguf = join(dir, 'tiny-q4_0.gguf');
    const quantized = await runSeesaw(['quantize', '--model', hf, '--type', 'q4_0', '--out', gguf]);
    expect(quantized.status, quantized.stderr).toBe(0);
    expect(quantized.stdout).toContain('q4_0');
    const input = join(dir, 'in.jsonl');
    const output = join(dir, 'out.jsonl');
    writeFileSync(input, `${JSON.stringify({ prompt: 'Hello world', max_tokens: 6, custom_id: 'a' })}\n`);
    const run = await runSeesaw([
      'run',
      '--model',
      gguf,
      '--input',
      input,
      '--output',
      output,
      '--threads',
      '1',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const line = JSON.parse(readFileSync(output, 'utf8').trim());
    expect(line.custom_id).toBe('a');
    expect(line.response.body.usage.completion_tokens).toBe(6);
    expect(typeof line.response.body.choices[0].text).toBe('string');
  });

  it('refuses an unknown type and names the flag', async () => {
    const result = await runSeesaw([
      'quantize',
      '--model',
      dir,
      '--type',
      'q3_k',
      '--out',
      join(dir, 'x.gguf'),
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--type');
  });

  it('info prints the chosen matmul and int8 paths', async () => {
    const result = await runSeesaw(['info']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/int8 kernels for Q8_0\/Q4_0 weights: (scalar|avx2|avxvnni|avx512vnni)/);
    expect(result.stdout).toMatch(/f32\/f16\/bf16 matmul: (avx2|avx512) /);
  });
});
