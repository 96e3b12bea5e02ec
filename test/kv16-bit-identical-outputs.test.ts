// The batch-invariance promise per KV dtype, through the real CLI on a fresh random bf16 model:
// with --kv-dtype bf16 (and f16) every request gets the same tokens and log-probabilities
// alone or in the whole file, under preemption by swap (16-bit KV through the host tier and
// back), under T2, P2 and a Seesaw P2 -> T2 pair. `auto` on a bf16 checkpoint is bf16, and
// the outputs differ from the f32 cache's (the flag reaches the kernels).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSeesaw } from '../apps/cli/test/e2e-test-support.ts';

const NUM_REQUESTS = 24;
const seed = Number(process.env.SEESAW_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`kv16-bit-identical-outputs seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
let state = seed >>> 0;
const random = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
};

let workDir = '';
let model = '';
let prompts = '';

/** custom_id -> the record's choice (tokens and log-probabilities) of a `seesaw run` output file. */
function outputChoices(path: string): Map<string, unknown> {
  const records = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  return new Map(records.map((r) => [r.custom_id, r.response.body.choices[0]]));
}

async function run(name: string, flags: string[], input = prompts) {
  const output = join(workDir, `${name}.jsonl`);
  const result = await runSeesaw(['run', '--model', model, '--input', input, '--output', output, ...flags]);
  expect(result.status, `${name}: ${result.stderr}`).toBe(0);
  return { choices: outputChoices(output), stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-kv16-'));
  model = join(workDir, 'model');
  const generated = await runSeesaw([
    'gen-model',
    '--shape',
    'tiny',
    '--seed',
    String(seed % 1000),
    '--out',
    model,
  ]);
  expect(generated.status, generated.stderr).toBe(0);
  const lines = Array.from({ length: NUM_REQUESTS }, (_, i) =>
    JSON.stringify({
      custom_id: `r${i}`,
      prompt: Array.from({ length: 4 + Math.floor(random() * 60) }, () => 3 + Math.floor(random() * 2000)),
      max_tokens: 4 + Math.floor(random() * 20),
      temperature: 0.6 + random(),
      seed: Math.floor(random() * 1e6),
      ignore_eos: true,
      return_token_ids: true,
      logprobs: 3,
    }),
  );
  prompts = join(workDir, 'prompts.jsonl');
  writeFileSync(prompts, `${lines.join('\n')}\n`);
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('16-bit KV outputs are bit-identical across batches, swaps and layouts', () => {
  it('bf16: alone, swapped through the host tier, T2, P2 and Seesaw P2 -> T2; auto is bf16', async () => {
    const kv = ['--kv-dtype', 'bf16'];
    const reference = await run('bf16-d1', [...kv, '--threads', '1']);
    expect(reference.choices.size).toBe(NUM_REQUESTS);
    expect(reference.stdout + reference.stderr).toContain('KV cache: bf16');
    const f32 = await run('f32-d1', ['--kv-dtype', 'f32', '--threads', '1']);
    expect(f32.choices).not.toEqual(reference.choices);
    expect((await run('auto-d1', ['--kv-dtype', 'auto', '--threads', '2'])).choices).toEqual(
      reference.choices,
    );

    const lines = readFileSync(prompts, 'utf8').trim().split('\n');
    const i = Math.floor(random() * NUM_REQUESTS);
    const alone = join(workDir, `alone-${i}.jsonl`);
    writeFileSync(alone, `${lines[i]}\n`);
    expect((await run('alone', [...kv, '--threads', '2'], alone)).choices.get(`r${i}`)).toEqual(
      reference.choices.get(`r${i}`),
    );
    // 192 KiB of bf16 KV: the 6 blocks 384 KiB of f32 hold, so requests are preempted and swapped.
    const swap = [...kv, '--kv-cache-memory', '192KiB', '--host-kv-memory', '32MiB', '--preemption', 'swap'];
    expect((await run('swap', swap)).choices).toEqual(reference.choices);
    for (const config of ['T2', 'P2']) {
      const flags = [...kv, '--devices', '2', '--config', config, '--threads', '1'];
      expect((await run(config, flags)).choices, config).toEqual(reference.choices);
    }
    const seesaw = [...kv, '--devices', '2', '--prefill', 'P2', '--decode', 'T2', '--threads', '1'];
    expect((await run('seesaw', [...seesaw, '--host-kv-memory', '32MiB'])).choices).toEqual(
      reference.choices,
    );
  }, 240_000);

  it('f16: T2 and Seesaw P2 -> T2 equal one device', async () => {
    const kv = ['--kv-dtype', 'f16', '--threads', '1'];
    const reference = await run('f16-d1', kv);
    expect((await run('f16-t2', [...kv, '--devices', '2', '--config', 'T2'])).choices).toEqual(
      reference.choices,
    );
    const seesaw = [
      ...kv,
      '--devices',
      '2',
      '--prefill',
      'P2',
      '--decode',
      'T2',
      '--host-kv-memory',
      '32MiB',
    ];
    expect((await run('f16-seesaw', seesaw)).choices).toEqual(reference.choices);
  }, 120_000);

  it('refuses a KV dtype it does not know, naming the choices', async () => {
    const result = await runSeesaw([
      'run',
      '--model',
      model,
      '--input',
      prompts,
      '--output',
      join(workDir, 'x.jsonl'),
      '--kv-dtype',
      'fp8',
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("--kv-dtype must be one of auto, bf16, f16, f32, got 'fp8'");
  });
});
