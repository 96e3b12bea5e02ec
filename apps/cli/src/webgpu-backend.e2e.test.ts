/**
 * `seesaw run --backend webgpu` in a real CLI process with real device worker threads on the
 * first WebGPU adapter (lavapipe in CI): the same tokens as `--backend cpu` on the same lines,
 * greedy and seeded sampling (temperature, top-k, top-p), on one device and on two device
 * actors sharing the adapter (--devices 2 --config D2 --gpus-per-adapter 2). Skipped, with the
 * reason printed, when the engine or a WebGPU adapter is unavailable.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpoint, loadModelConfig } from '@seesaw/model';
import { openGpu } from '@seesaw/webgpu-device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../test/e2e-test-support.ts';
import type { BatchOutputRecord } from './batch-output.ts';

async function findUnavailableReason(): Promise<string | null> {
  const engine = await findEngineUnavailableReason();
  if (engine !== null) return engine;
  const opened = await openGpu();
  if (!opened.ok) return opened.reason;
  opened.context.device.destroy();
  return null;
}

const unavailableReason = await findUnavailableReason();
if (unavailableReason !== null) console.log(`skipping the WebGPU backend CLI tests: ${unavailableReason}`);

function seedForTest(): number {
  const fromEnv = process.env.SEESAW_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`webgpu backend test seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
  return seed;
}

/** Prompt lines: greedy ones of 3 to 40 tokens (several KV blocks), and seeded sampled ones. */
function promptLines(seed: number, vocabSize: number): string {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  const prompt = (length: number) => Array.from({ length }, () => 1 + (next() % (vocabSize - 1)));
  const lines = [3, 17, 40, 9].map((length, i) =>
    JSON.stringify({
      custom_id: `greedy-${i}`,
      prompt: prompt(length),
      max_tokens: 12,
      temperature: 0,
      ignore_eos: true,
    }),
  );
  const sampling = [
    { temperature: 0.8, top_k: 40, top_p: 0.9 },
    { temperature: 1.2 },
    { temperature: 0.6, top_p: 0.5 },
  ];
  sampling.forEach((params, i) => {
    lines.push(
      JSON.stringify({
        custom_id: `sampled-${i}`,
        prompt: prompt(5 + 4 * i),
        max_tokens: 10,
        seed: seed + i,
        ignore_eos: true,
        ...params,
      }),
    );
  });
  return `${lines.join('\n')}\n`;
}

/** custom_id -> generated token ids of a run's output file. */
function outputTokens(path: string): Map<string, number[]> {
  const records: BatchOutputRecord[] = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  return new Map(
    records.map((record) => {
      const tokenIds = record.response?.body.choices[0].token_ids;
      if (!tokenIds) throw new Error(`${record.custom_id}: no token_ids in ${JSON.stringify(record)}`);
      return [record.custom_id, tokenIds];
    }),
  );
}

describe.skipIf(unavailableReason !== null)('seesaw run --backend webgpu', () => {
  let dir = '';
  let modelDir = '';
  let inputPath = '';
  let cpuTokens = new Map<string, number[]>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-cli-'));
    modelDir = join(dir, 'tiny');
    await generateCheckpoint({ shape: 'tiny', seed: 5, dtype: 'bf16', outDir: modelDir });
    // Without a tokenizer the output records carry the token ids themselves.
    rmSync(join(modelDir, 'tokenizer.json'));
    rmSync(join(modelDir, 'tokenizer_config.json'));
    inputPath = join(dir, 'prompts.jsonl');
    writeFileSync(inputPath, promptLines(seedForTest(), loadModelConfig(modelDir).vocabSize));
    const cpuPath = join(dir, 'cpu.jsonl');
    const cpu = await runSeesaw([
      'run',
      '--model',
      modelDir,
      '--input',
      inputPath,
      '--output',
      cpuPath,
      '--threads',
      '1',
    ]);
    expect(cpu.stderr).not.toContain('error');
    expect(cpu.status).toBe(0);
    cpuTokens = outputTokens(cpuPath);
    expect(cpuTokens.size).toBe(7);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['one device', ['--kv-cache-memory', '2MiB']],
    [
      'two device actors on one adapter',
      ['--devices', '2', '--config', 'D2', '--gpus-per-adapter', '2', '--device-memory', '16MiB'],
    ],
  ])(
    '%s: the same greedy and seeded-sampled tokens as --backend cpu',
    async (_name, flags) => {
      const gpuPath = join(dir, `gpu-${flags.length}.jsonl`);
      const gpu = await runSeesaw([
        'run',
        ...['--model', modelDir, '--input', inputPath, '--output', gpuPath, '--backend', 'webgpu'],
        ...flags,
      ]);
      expect(gpu.stderr).toContain('WebGPU');
      expect(gpu.status).toBe(0);
      expect(outputTokens(gpuPath)).toEqual(cpuTokens);
    },
    120_000,
  );

  it('refuses layouts the GPU backend cannot run yet, naming the flag', async () => {
    const common = ['run', '--model', modelDir, '--input', inputPath, '--output', join(dir, 'x.jsonl')];
    const cases: Array<[string[], string]> = [
      [['--backend', 'cuda'], "--backend must be one of cpu, webgpu, got 'cuda'"],
      [['--gpus-per-adapter', '2'], '--gpus-per-adapter needs --backend webgpu'],
      [['--backend', 'webgpu', '--devices', '2', '--config', 'D2'], 'needs --gpus-per-adapter 2'],
      [
        ['--backend', 'webgpu', '--devices', '2', '--config', 'T2', '--gpus-per-adapter', '2'],
        'use --config Dn',
      ],
      [['--backend', 'webgpu', '--host-kv-memory', '1MiB'], '--host-kv-memory'],
    ];
    for (const [flags, message] of cases) {
      const result = await runSeesaw([...common, ...flags]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(message);
    }
  }, 60_000);
});
