/**
 * The real `seesaw` command in child processes on real files: gen-model, run (all input
 * forms, error records, resume), bench, and usage errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, SEESAW_BIN } from '../test/e2e-test-support.ts';
import type { BatchOutputRecord, ErrorRecord, SuccessRecord } from './batch-output.ts';
import { REPO_ROOT } from './model-cache.ts';

const FIXTURE_NO_TOKENIZER = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

const engineUnavailableReason = await findEngineUnavailableReason();

function seesaw(args: string[]) {
  const result = spawnSync(process.execPath, [SEESAW_BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function readRecords(path: string): BatchOutputRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

function byCustomId(records: BatchOutputRecord[]): Map<string, BatchOutputRecord> {
  return new Map(records.map((record) => [record.custom_id, record]));
}

describe('usage errors (no engine needed)', () => {
  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['run', '--model', 'x', '--bogus'], "Unknown option '--bogus'"],
    [['run', '--model', 'x', '--input', 'a'], 'missing required flag --output'],
    [
      ['run', '--model', 'x', '--input', 'a', '--output', 'b', '--kv-cache-memory', '1GB'],
      "unknown unit 'GB'",
    ],
    [
      ['run', '--model', 'x', '--input', 'a', '--output', 'b', '--threads', '0'],
      '--threads must be an integer >= 1',
    ],
    [['gen-model', '--shape', 'huge', '--out', 'x'], '--shape must be one of tiny, small, medium'],
    [['bench', '--num-prompts', '2', '--dataset', 'random'], 'missing --model DIR'],
  ])('%j exits 2 with a clear message', (args, message) => {
    const result = seesaw(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("Run 'seesaw help' for usage.");
  });

  it('help prints usage and exits 0; run --help prints that command only, --version the version', () => {
    for (const args of [['help'], ['--help']]) {
      const result = seesaw(args);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^Usage: seesaw/);
      expect(result.stdout).toContain('gen-model');
    }
    const run = seesaw(['run', '--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: seesaw run /);
    expect(run.stdout).toContain('--input prompts.jsonl');
    expect(run.stdout).not.toContain('gen-model');
    const version = seesaw(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^seesaw \d+\.\d+\.\d+\n$/);
  });
});

describe.skipIf(engineUnavailableReason !== null)(
  `seesaw end to end${engineUnavailableReason === null ? '' : ` (skipped: ${engineUnavailableReason})`}`,
  () => {
    let dir: string;
    let modelDir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-'));
      modelDir = join(dir, 'tiny-model');
      const result = seesaw([
        'gen-model',
        '--shape',
        'tiny',
        '--seed',
        '3',
        '--dtype',
        'bf16',
        '--out',
        modelDir,
      ]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`wrote the tiny bf16 checkpoint (seed 3`);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const PROMPT_LINES = [
      '{"custom_id": "text-1", "prompt": "Hello world", "max_tokens": 8, "temperature": 0}',
      '{"prompt": [1, 2,',
      JSON.stringify({
        custom_id: 'batch-1',
        method: 'POST',
        url: '/v1/completions',
        body: {
          model: 'tiny',
          prompt: 'Once upon',
          max_tokens: 6,
          temperature: 0.8,
          top_p: 0.9,
          seed: 42,
          return_token_ids: true,
        },
      }),
      '{"prompt": [1, 15, 200, 33], "max_tokens": 5, "temperature": 0, "ignore_eos": true}',
      '{"custom_id": "text-1", "prompt": [1], "max_tokens": 1}',
      '{"prompt": [1, 5000], "max_tokens": 1}',
      '{"custom_id": "stop-early", "prompt": [1, 9, 9], "max_tokens": 50, "temperature": 0, "stop_token_ids": STOP}',
    ];

    it('runs every input form, writes OpenAI batch records and error records, then resumes', async () => {
      const { SeesawTokenizer } = await import('@seesaw/model');
      const tokenizer = SeesawTokenizer.load(modelDir);
      expect(tokenizer).not.toBeNull();
      // Stop on every id the greedy run of the same prompt could produce first: it must stop at once.
      const allIds = Array.from({ length: 2048 }, (_, i) => i);
      const inputPath = join(dir, 'prompts.jsonl');
      const outputPath = join(dir, 'results.jsonl');
      writeFileSync(inputPath, `${PROMPT_LINES.join('\n').replace('STOP', JSON.stringify(allIds))}\n`);

      const first = seesaw([
        'run',
        '--model',
        modelDir,
        '--input',
        inputPath,
        '--output',
        outputPath,
        '--threads',
        '1',
      ]);
      expect(first.status).toBe(0);
      expect(first.stdout).toContain('Requests: 4 ok, 3 errors, 0 skipped');
      expect(first.stderr).toMatch(/progress: 4\/4 req/);
      const records = readRecords(outputPath);
      expect(records).toHaveLength(7);
      const errors = records.filter((record): record is ErrorRecord => record.error !== null);
      expect(errors.map((record) => [record.custom_id, record.error.code, record.response]).sort()).toEqual([
        ['request-2', 'invalid_json', null],
        ['request-6', 'invalid_request', null],
        ['text-1', 'duplicate_custom_id', null],
      ]);
      expect(errors.find((r) => r.custom_id === 'request-6')!.error.message).toBe(
        'line 6: prompt token id 5000 at index 1 is outside the vocabulary [0, 2048)',
      );
      expect(errors.find((r) => r.custom_id === 'text-1')!.error.message).toContain(
        'line 5: duplicate custom_id',
      );

      const successes = byCustomId(
        records.filter((record): record is SuccessRecord => record.error === null),
      );
      const text1 = successes.get('text-1') as SuccessRecord;
      expect(text1.response.status_code).toBe(200);
      expect(text1.response.body.object).toBe('text_completion');
      expect(text1.response.body.model).toBe('tiny-model');
      expect(text1.response.body.usage).toEqual({
        prompt_tokens: tokenizer!.encode('Hello world').length,
        completion_tokens: 8,
        total_tokens: tokenizer!.encode('Hello world').length + 8,
      });
      expect(text1.response.body.choices[0].token_ids).toBeUndefined();
      expect(text1.response.body.choices[0].finish_reason).toBe('length');

      const batch1 = successes.get('batch-1') as SuccessRecord;
      const choice = batch1.response.body.choices[0];
      expect(choice.token_ids).toHaveLength(6);
      expect(batch1.response.body.prompt_token_ids).toEqual(tokenizer!.encode('Once upon'));
      expect(choice.text).toBe(tokenizer!.decode(choice.token_ids!));

      const ids = successes.get('request-4') as SuccessRecord;
      expect(ids.response.body.usage).toEqual({ prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
      expect(ids.response.body.choices[0].token_ids).toBeUndefined();

      const stopped = successes.get('stop-early') as SuccessRecord;
      expect(stopped.response.body.choices[0].finish_reason).toBe('stop');
      expect(stopped.response.body.usage.completion_tokens).toBe(1);
      // The stop token is not part of the text (as in vLLM).
      expect(stopped.response.body.choices[0].text).toBe('');

      // Second run: everything completed is skipped, error records are re-evaluated (not duplicated).
      const completedLines = readFileSync(outputPath, 'utf8')
        .split('\n')
        .filter((line) => line.includes('"status_code":200'));
      const second = seesaw([
        'run',
        '--model',
        modelDir,
        '--input',
        inputPath,
        '--output',
        outputPath,
        '--threads',
        '1',
      ]);
      expect(second.status).toBe(0);
      expect(second.stdout).toContain('Requests: 0 ok, 3 errors, 4 skipped');
      expect(second.stderr).toContain(
        'skipped 4 requests already completed, re-evaluating 3 previous error records',
      );
      const secondLines = readFileSync(outputPath, 'utf8')
        .split('\n')
        .filter((line) => line !== '');
      expect(secondLines).toHaveLength(7);
      expect(secondLines.slice(0, 4)).toEqual(completedLines);

      // A run cut short: one completed record lost (and a torn line) -> only that request runs again.
      const kept = completedLines.filter((line) => !line.includes('"custom_id":"request-4"'));
      writeFileSync(outputPath, `${kept.join('\n')}\n{"id":"batch_req_x","custom_id":"req`);
      const third = seesaw([
        'run',
        '--model',
        modelDir,
        '--input',
        inputPath,
        '--output',
        outputPath,
        '--threads',
        '1',
      ]);
      expect(third.status).toBe(0);
      expect(third.stdout).toContain('Requests: 1 ok, 3 errors, 3 skipped');
      expect(third.stderr).toContain(
        'skipped 3 requests already completed, re-evaluating 0 previous error records',
      );
      expect(third.stderr).toContain('dropped 1 unreadable lines');
      const thirdRecords = readRecords(outputPath);
      expect(thirdRecords).toHaveLength(7);
      const rerun = byCustomId(thirdRecords).get('request-4') as SuccessRecord;
      // Greedy: the same tokens as the first time.
      expect(rerun.response.body.choices[0].text).toBe(ids.response.body.choices[0].text);
      expect(new Set(thirdRecords.map((r) => r.custom_id)).size).toBe(6);
    });

    it.skipIf(!existsSync(FIXTURE_NO_TOKENIZER))(
      'gives text prompts an error record and returns ids when the model has no tokenizer',
      () => {
        const inputPath = join(dir, 'fixture-prompts.jsonl');
        const outputPath = join(dir, 'fixture-results.jsonl');
        writeFileSync(
          inputPath,
          '{"prompt": "text"}\n{"prompt": [1, 2, 3], "max_tokens": 3, "ignore_eos": true}\n',
        );
        const result = seesaw([
          'run',
          '--model',
          FIXTURE_NO_TOKENIZER,
          '--input',
          inputPath,
          '--output',
          outputPath,
        ]);
        expect(result.status).toBe(0);
        const records = byCustomId(readRecords(outputPath));
        const textError = records.get('request-1') as ErrorRecord;
        expect(textError.error.message).toContain(
          'line 1: prompt is text but the model has no tokenizer.json',
        );
        const idsOnly = records.get('request-2') as SuccessRecord;
        expect(idsOnly.response.body.choices[0].text).toBe('');
        expect(idsOnly.response.body.choices[0].token_ids).toHaveLength(3);
        expect(idsOnly.response.body.prompt_token_ids).toEqual([1, 2, 3]);
        expect(idsOnly.response.body.model).toBe('tiny-llama-bf16');
      },
    );

    it('gives a request the engine rejects an error record and keeps going', () => {
      const inputPath = join(dir, 'reject-prompts.jsonl');
      const outputPath = join(dir, 'reject-results.jsonl');
      // 256 KiB holds 64 tokens of the tiny model (4 layers x K,V x 4 heads x 32 x f32 = 4 KiB a token):
      // 4 blocks of 16, too few for a 100-token prompt.
      const long = Array.from({ length: 100 }, (_, i) => (i % 2000) + 3);
      writeFileSync(inputPath, `${JSON.stringify({ prompt: long })}\n{"prompt": [1, 2], "max_tokens": 2}\n`);
      const result = seesaw([
        'run',
        ...['--model', modelDir, '--input', inputPath, '--output', outputPath, '--kv-cache-memory', '256KiB'],
      ]);
      expect(result.status).toBe(0);
      const records = byCustomId(readRecords(outputPath));
      const rejected = records.get('request-1') as ErrorRecord;
      expect(rejected.error.code).toBe('request_rejected');
      expect(rejected.error.message).toMatch(/^line 1: /);
      expect(
        (records.get('request-2') as SuccessRecord).response.body.usage.completion_tokens,
      ).toBeGreaterThan(0);
    });

    it('bench --dataset random prints the throughput lines and writes --json', () => {
      const jsonPath = join(dir, 'bench.json');
      const result = seesaw([
        'bench',
        ...['--model', modelDir, '--dataset', 'random', '--num-prompts', '6', '--input-len', '24'],
        ...['--output-len', '10', '--threads', '1', '--seed', '5', '--json', jsonPath],
      ]);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(
        /^Throughput: \d+\.\d{2} requests\/s, \d+\.\d{2} total tokens\/s, \d+\.\d{2} output tokens\/s$/m,
      );
      expect(result.stdout).toContain('Total num prompt tokens: 144\n');
      expect(result.stdout).toContain('Total num output tokens: 60\n');
      expect(result.stdout).toMatch(/Peak resident memory: \d/);
      expect(existsSync(jsonPath)).toBe(true);
      const figures = JSON.parse(readFileSync(jsonPath, 'utf8'));
      expect(figures).toMatchObject({
        num_requests: 6,
        total_num_prompt_tokens: 144,
        total_num_output_tokens: 60,
      });
      expect(figures.output_tokens_per_second).toBeCloseTo(60 / figures.elapsed_time, 6);
      expect(figures.weight_bytes).toBeGreaterThan(0);
      expect(figures.kv_cache_bytes).toBeGreaterThan(0);
    });

    it('bench takes the first N requests of a prompts JSONL file', () => {
      const promptsPath = join(dir, 'bench-prompts.jsonl');
      const lines = [
        '{"prompt": [1, 2, 3], "max_tokens": 4, "ignore_eos": true}',
        '{"prompt": "Hello there", "max_tokens": 2, "ignore_eos": true, "temperature": 0}',
        '{"prompt": [5], "max_tokens": 50}',
      ];
      writeFileSync(promptsPath, `${lines.join('\n')}\n`);
      const result = seesaw(['bench', '--model', modelDir, '--dataset', promptsPath, '--num-prompts', '2']);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Total num output tokens: 6\n');
    });

    it('bench samples a length-trace CSV', () => {
      const csvPath = join(dir, 'lengths.csv');
      writeFileSync(csvPath, 'prompt_tokens,output_tokens\n10,4\n20,3\n5000,10\n7,2\n');
      const result = seesaw(['bench', '--model', modelDir, '--dataset', csvPath, '--num-prompts', '3']);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Total num prompt tokens: 37\n');
      expect(result.stdout).toContain('Total num output tokens: 9\n');
      expect(result.stderr).toContain('1 rows do not fit the model');
    });
  },
);
