import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JOB, defaultWorkloadLines } from './default-job.ts';
import { parseInputFile } from './input-lines.ts';
import { cachedModelDir, ensureCachedModel, REPO_ROOT } from './model-cache.ts';

describe('default job workload', () => {
  it('is 32 greedy prompts of 128 valid token ids with 64 output tokens, the same every time', () => {
    const lines = defaultWorkloadLines(32000);
    expect(lines).toEqual(defaultWorkloadLines(32000));
    const results = parseInputFile(lines.join('\n'), {
      vocabSize: 32000,
      maxModelLen: 2048,
      tokenizer: null,
    });
    expect(results).toHaveLength(DEFAULT_JOB.numPrompts);
    for (const result of results) {
      if (!result.isOk) throw new Error(result.error.message);
      expect(result.request.promptTokenIds).toHaveLength(128);
      expect(result.request.sampling).toMatchObject({ maxTokens: 64, temperature: 0, ignoreEos: true });
    }
    expect(DEFAULT_JOB.model).toEqual({ shape: 'small', dtype: 'bf16', seed: 0 });
  });
});

describe('model cache', () => {
  it('lives under <repo>/.seesaw/models/<shape>-<dtype>-seed<seed>', () => {
    expect(cachedModelDir({ shape: 'small', dtype: 'bf16', seed: 0 })).toBe(
      join(REPO_ROOT, '.seesaw', 'models', 'small-bf16-seed0'),
    );
    expect(existsSync(join(REPO_ROOT, 'pnpm-workspace.yaml'))).toBe(true);
  });

  it('generates a checkpoint once and reuses it, leaving no partial directory', async () => {
    const root = mkdtempSync(join(tmpdir(), 'seesaw-cache-'));
    try {
      const spec = { shape: 'tiny', dtype: 'f16', seed: 9 } as const;
      const logs: string[] = [];
      const dir = await ensureCachedModel(spec, (line) => logs.push(line), root);
      expect(dir).toBe(join(root, '.seesaw', 'models', 'tiny-f16-seed9'));
      expect(existsSync(join(dir, 'config.json'))).toBe(true);
      const modifiedMs = statSync(join(dir, 'model.safetensors')).mtimeMs;
      expect(logs).toHaveLength(2);
      expect(await ensureCachedModel(spec, (line) => logs.push(line), root)).toBe(dir);
      expect(logs).toHaveLength(2);
      expect(statSync(join(dir, 'model.safetensors')).mtimeMs).toBe(modifiedMs);
      expect(readdirSync(join(root, '.seesaw', 'models'))).toEqual(['tiny-f16-seed9']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
