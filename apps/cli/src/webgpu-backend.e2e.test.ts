/**
 * `seesaw run --backend webgpu` in a real CLI process with real device worker threads on the
 * first WebGPU adapter (lavapipe in CI): the same tokens as `--backend cpu` on the same lines,
 * greedy and seeded sampling (temperature, top-k, top-p; steps with only greedy and top-k rows
 * take the GPU top-k path, the others the logits path), on one device and on two device
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

/** Seeded sampling of every kind: steps that mix them read the logits back. */
const MIXED_SAMPLING = [
  { temperature: 0.8, top_k: 40, top_p: 0.9 },
  { temperature: 1.2 },
  { temperature: 0.6, top_p: 0.5 },
  { temperature: 1.5, top_k: 8 },
];
/** Only top-k sampling beside the greedy lines: every step takes the GPU top-k path. */
const TOP_K_SAMPLING = [
  { temperature: 0.8, top_k: 40, top_p: 0.9 },
  { temperature: 1.5, top_k: 8 },
];

/** Prompt lines: greedy ones of 3 to 40 tokens (several KV blocks), and seeded sampled ones. */
function promptLines(seed: number, vocabSize: number, sampling: object[]): string {
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
  const inputs = { mixed: MIXED_SAMPLING, topK: TOP_K_SAMPLING };
  const cpuTokens = new Map<string, Map<string, number[]>>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-cli-'));
    modelDir = join(dir, 'tiny');
    await generateCheckpoint({ shape: 'tiny', seed: 5, dtype: 'bf16', outDir: modelDir });
    // Without a tokenizer the output records carry the token ids themselves.
    rmSync(join(modelDir, 'tokenizer.json'));
    rmSync(join(modelDir, 'tokenizer_config.json'));
    const seed = seedForTest();
    const { vocabSize } = loadModelConfig(modelDir);
    for (const [name, sampling] of Object.entries(inputs)) {
      const inputPath = join(dir, `${name}.jsonl`);
      writeFileSync(inputPath, promptLines(seed, vocabSize, sampling));
      const cpuPath = join(dir, `${name}-cpu.jsonl`);
      const args = ['run', '--model', modelDir, '--input', inputPath, '--output', cpuPath, '--threads', '1'];
      const cpu = await runSeesaw(args);
      expect(cpu.stderr).not.toContain('error');
      expect(cpu.status).toBe(0);
      cpuTokens.set(name, outputTokens(cpuPath));
      expect(cpuTokens.get(name)?.size).toBe(4 + sampling.length);
    }
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['one device, mixed sampling (logits path)', 'mixed', ['--kv-cache-memory', '2MiB']],
    ['one device, top-k sampling (GPU top-k path)', 'topK', ['--kv-cache-memory', '2MiB']],
    [
      'two device actors on one adapter',
      'mixed',
      ['--devices', '2', '--config', 'D2', '--gpus-per-adapter', '2', '--device-memory', '16MiB'],
    ],
  ])(
    '%s: the same greedy and seeded-sampled tokens as --backend cpu',
    async (_name, input, flags) => {
      const gpuPath = join(dir, `${input}-gpu-${flags.length}.jsonl`);
      const inputPath = join(dir, `${input}.jsonl`);
      const gpu = await runSeesaw([
        'run',
        ...['--model', modelDir, '--input', inputPath, '--output', gpuPath, '--backend', 'webgpu'],
        ...flags,
      ]);
      expect(gpu.stderr).toContain('WebGPU');
      expect(gpu.status).toBe(0);
      expect(outputTokens(gpuPath)).toEqual(cpuTokens.get(input));
    },
    120_000,
  );

  it("preemption by swap: a tight GPU KV budget with a host tier swaps, and the tokens stay the CPU engine's", async () => {
    // 8 prompts of 20 tokens, 40 out, in 7-8 blocks of 16 tokens: running sequences outgrow the
    // cache and are swapped out to the kv-store worker and back in (the shape alone decides the
    // schedule, so bench's random prompts of the same shape swap as the run's lines do).
    const tight = ['--kv-cache-memory', '512KiB', '--host-kv-memory', '4MiB', '--preemption', 'swap'];
    const bench = await runSeesaw([
      'bench',
      ...['--model', modelDir, '--dataset', 'random', '--num-prompts', '8', '--input-len', '20'],
      ...['--output-len', '40', '--backend', 'webgpu', ...tight],
    ]);
    expect(bench.status).toBe(0);
    const swapped = /Preemptions: (\d+) \((\d+) swapped to host memory/.exec(bench.stdout);
    expect(swapped, bench.stdout).not.toBeNull();
    expect(Number(swapped![2])).toBeGreaterThan(0);

    const { vocabSize } = loadModelConfig(modelDir);
    const lines = Array.from({ length: 8 }, (_, i) =>
      JSON.stringify({
        custom_id: `swap-${i}`,
        prompt: Array.from({ length: 20 }, (_, t) => 1 + ((i * 7919 + t * 104729) % (vocabSize - 1))),
        max_tokens: 40,
        ignore_eos: true,
        ...(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.9, top_k: i % 4 === 1 ? 20 : 0, seed: i }),
      }),
    );
    const inputPath = join(dir, 'swap.jsonl');
    writeFileSync(inputPath, `${lines.join('\n')}\n`);
    const outputs: Array<Map<string, number[]>> = [];
    for (const backend of ['cpu', 'webgpu']) {
      const outputPath = join(dir, `swap-${backend}.jsonl`);
      const args = ['run', '--model', modelDir, '--input', inputPath, '--output', outputPath];
      const result = await runSeesaw([...args, '--backend', backend, '--threads', '1', ...tight]);
      expect(result.status, result.stderr).toBe(0);
      outputs.push(outputTokens(outputPath));
    }
    expect(outputs[0].size).toBe(8);
    expect(outputs[1]).toEqual(outputs[0]);
  }, 180_000);

  it('refuses layouts the GPU backend cannot run yet, naming the flag', async () => {
    const common = [
      'run',
      '--model',
      modelDir,
      '--input',
      join(dir, 'mixed.jsonl'),
      '--output',
      join(dir, 'x.jsonl'),
    ];
    const cases: Array<[string[], string]> = [
      [['--backend', 'cuda'], "--backend must be one of cpu, webgpu, got 'cuda'"],
      [['--gpus-per-adapter', '2'], '--gpus-per-adapter needs --backend webgpu'],
      [['--backend', 'webgpu', '--devices', '2', '--config', 'D2'], 'needs --gpus-per-adapter 2'],
      [
        ['--backend', 'webgpu', '--devices', '2', '--config', 'T2', '--gpus-per-adapter', '2'],
        'use --config Dn',
      ],
      [['--backend', 'webgpu', '--prefill', 'P2', '--decode', 'T2'], 'Seesaw re-sharding'],
    ];
    for (const [flags, message] of cases) {
      const result = await runSeesaw([...common, ...flags]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(message);
    }
  }, 60_000);
});
