import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpoint } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTokensAgree } from '../test/sampled-token-agreement.ts';

// The case a WebGPU run met (seed 1736770850): on the tiny bf16 model of seed 9, after this prompt
// and four shared tokens the CPU engine drew 261 and the GPU 1730, whose logits are 3.2e-7 apart.
const PROMPT = [454, 1251, 1891, 1058, 115, 205, 1756, 1816, 1508];
const CPU = [763, 1222, 673, 254, 261, 74, 88, 1097, 800, 543];
const GPU = [763, 1222, 673, 254, 1730, 1007, 1847, 69, 1146, 350];

describe('checkTokensAgree: the WebGPU tests’ rule for tokens against the CPU engine', () => {
  let dir = '';
  let modelDir = '';
  const input = (temperature: number) => {
    const path = join(dir, `lines-${temperature}.jsonl`);
    writeFileSync(path, `${JSON.stringify({ custom_id: 'a', prompt: PROMPT, seed: 1, temperature })}\n`);
    return path;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-agreement-'));
    modelDir = join(dir, 'tiny');
    await generateCheckpoint({ shape: 'tiny', seed: 9, dtype: 'bf16', outDir: modelDir });
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('equal tokens agree with nothing to report', () => {
    expect(checkTokensAgree(new Map([['a', CPU]]), new Map([['a', CPU]]), input(1.2), modelDir)).toEqual([]);
  });

  it('a sampled line may diverge at a near-tie of the reference logits, and is reported', () => {
    const report = checkTokensAgree(new Map([['a', GPU]]), new Map([['a', CPU]]), input(1.2), modelDir);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatch(/^a step 4: token 1730 against 261: a near-tie/);
  });

  it('a sampled draw of a token whose logit is not tied fails, naming the step', () => {
    const wrong = [...CPU.slice(0, 4), 262, ...CPU.slice(5)];
    expect(() =>
      checkTokensAgree(new Map([['a', wrong]]), new Map([['a', CPU]]), input(1.2), modelDir),
    ).toThrow(/a step 4: token 262 against 261: reference logits .* apart, more than/);
  });

  it('a greedy line must give the same tokens, and outputs must cover the same lines and lengths', () => {
    expect(() => checkTokensAgree(new Map([['a', GPU]]), new Map([['a', CPU]]), input(0), modelDir)).toThrow(
      /on a greedy line/,
    );
    expect(() =>
      checkTokensAgree(new Map([['a', CPU.slice(1)]]), new Map([['a', CPU]]), input(1.2), modelDir),
    ).toThrow(/9 tokens against 10/);
    expect(() =>
      checkTokensAgree(new Map([['b', CPU]]), new Map([['a', CPU]]), input(1.2), modelDir),
    ).toThrow(/outputs for b/);
  });
});
