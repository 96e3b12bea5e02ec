/**
 * Issue 13 item 12 (model directory): a model directory with config.json but no weights fails
 * `seesaw run` with one error saying the weights are missing, not one error per prompt line and
 * exit 0. Runs the real CLI on a generated tiny checkpoint with its weights removed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpoint } from '@seesaw/model';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT } from '../remote-cluster-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-model-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('model directory checks', () => {
  it('item 12: config.json without weights is one clear error and a failing exit', async () => {
    const model = join(dir, 'model');
    await generateCheckpoint({ shape: 'tiny', seed: 5, dtype: 'bf16', outDir: model });
    rmSync(join(model, 'model.safetensors'));
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      Array.from({ length: 5 }, (_, i) => JSON.stringify({ prompt: `hello ${i}` })).join('\n'),
    );
    const result = spawnSync(
      process.execPath,
      [BIN, 'run', '--model', model, '--input', input, '--output', join(dir, 'out.jsonl')],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/neither model\.safetensors nor model\.safetensors\.index\.json found/);
    expect(result.stderr).not.toMatch(/line \d/);
  }, 60_000);
});
