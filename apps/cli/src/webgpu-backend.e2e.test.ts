/**
 * `seesaw run --backend webgpu` in a real CLI process with real device worker threads on the
 * first WebGPU adapter (lavapipe in CI): the same tokens as `--backend cpu` on the same lines,
 * greedy and seeded sampling (temperature, top-k, top-p: every row's head and tail weight are
 * selected on the GPU, gpu-sampling.ts; a sampled line may part from them at a logit near-tie:
 * sampled-token-agreement.ts), on one device and on two device
 * actors sharing the adapter (--devices 2 --config D2 --gpus-per-adapter 2), and preemption by
 * swap; bench --compare and profile with --backend webgpu. Skipped, with the reason printed, when the engine or a WebGPU adapter is unavailable.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelConfig } from '@seesaw/model';
import { loadClusterProfile } from '@seesaw/planner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSeesaw } from '../test/e2e-test-support.ts';
import { expectTokensAgree } from '../test/sampled-token-agreement.ts';
import {
  findWebGpuUnavailableReason,
  generateTokenIdModel,
  MIXED_SAMPLING,
  outputTokens,
  promptLines,
  seedForTest,
  TOP_K_SAMPLING,
} from '../test/webgpu-test-support.ts';

const unavailableReason = await findWebGpuUnavailableReason();
if (unavailableReason !== null) console.log(`skipping the WebGPU backend CLI tests: ${unavailableReason}`);

describe.skipIf(unavailableReason !== null)('seesaw run --backend webgpu', () => {
  let dir = '';
  let modelDir = '';
  const inputs = { mixed: MIXED_SAMPLING, topK: TOP_K_SAMPLING };
  const cpuTokens = new Map<string, Map<string, number[]>>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-cli-'));
    modelDir = join(dir, 'tiny');
    await generateTokenIdModel(modelDir, 5, 'bf16');
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
    ['one device, mixed sampling (GPU heads and tail weights)', 'mixed', ['--kv-cache-memory', '2MiB']],
    ['one device, top-k sampling (GPU heads)', 'topK', ['--kv-cache-memory', '2MiB']],
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
      expectTokensAgree(outputTokens(gpuPath), cpuTokens.get(input)!, inputPath, modelDir);
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
    expectTokensAgree(outputs[1], outputs[0], inputPath, modelDir);
  }, 180_000);

  it('bench --compare seesaw:P2-T2,static:T2 --backend webgpu runs every layout on the GPU backend', async () => {
    const args = ['bench', '--model', modelDir, '--num-prompts', '4', '--input-len', '12'];
    const compare = ['--output-len', '6', '--compare', 'seesaw:P2-T2,static:T2', '--backend', 'webgpu'];
    const refused = await runSeesaw([...args, ...compare]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('needs --gpus-per-adapter 2');
    const jsonPath = join(dir, 'compare-webgpu.json');
    const placement = ['--gpus-per-adapter', '2', '--device-memory', '16MiB', '--host-kv-memory', '4MiB'];
    const result = await runSeesaw([...args, ...compare, ...placement, '--json', jsonPath]);
    expect(result.status, result.stderr).toBe(0);
    // The device workers announce their adapter: the runs really went to the GPU backend.
    expect(result.stderr).toContain('WebGPU');
    const rows = JSON.parse(readFileSync(jsonPath, 'utf8'));
    expect(rows.map((row: { run: string }) => row.run)).toEqual(['seesaw:P2-T2', 'static:T2']);
    expect(rows.map((row: { num_requests: number }) => row.num_requests)).toEqual([4, 4]);
    expect(rows[0].num_switches).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("profile --backend webgpu: a cluster profile the planner loads, with the adapter's kernel figures", async () => {
    const out = join(dir, 'webgpu-profile.json');
    const result = await runSeesaw([
      'profile',
      '--out',
      out,
      '--backend',
      'webgpu',
      '--quick',
      '--devices',
      '1',
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /WebGPU: FMA peak [\d.]+ GFLOP\/s, copy [\d.]+ GB\/s; matmul .* of peak\), decode GEMV .* of copy\)/,
    );
    const profile = loadClusterProfile(out);
    expect(profile.device.name).toMatch(/^webgpu: /);
    // The CPU kernel timings do not describe this device: the planner costs it by its roofline.
    expect(profile.device.cpuKernels).toBeUndefined();
    const { measurements } = JSON.parse(readFileSync(out, 'utf8'));
    expect(profile.device.matmulFlopsPerSecond).toBeCloseTo(measurements.webgpuMatmulGflops * 1e9, -3);
    expect(profile.device.memoryBytesPerSecond).toBeCloseTo(measurements.webgpuGemvGBps * 1e9, -3);
  }, 120_000);

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
    ];
    for (const [flags, message] of cases) {
      const result = await runSeesaw([...common, ...flags]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(message);
    }
  }, 60_000);
});
