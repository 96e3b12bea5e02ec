/**
 * `seesaw run --input - --output -` in a real child process, against the same lines run from and
 * to files: the same records, the summary on stderr, and OpenAI-style lines (no-op fields,
 * max_completion_tokens, a max_tokens the context cannot hold) answered line by line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, SEESAW_BIN } from '../test/e2e-test-support.ts';
import type { BatchOutputRecord } from './batch-output.ts';
import { REPO_ROOT } from './model-cache.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

function seesaw(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [SEESAW_BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    input,
    timeout: 90_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** What a record says about its request, without the ids and timestamps made at write time. */
function essence(record: BatchOutputRecord) {
  if (record.response === null) return { id: record.custom_id, error: record.error?.code };
  const choice = record.response.body.choices[0];
  return { id: record.custom_id, text: choice.text, finish: choice.finish_reason, ids: choice.token_ids };
}

function essences(jsonl: string) {
  return jsonl
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => essence(JSON.parse(line) as BatchOutputRecord))
    .sort((a, b) => a.id.localeCompare(b.id));
}

const LINES = [
  { custom_id: 'plain', prompt: [1, 7, 9], max_tokens: 6, temperature: 0, return_token_ids: true },
  {
    custom_id: 'openai',
    method: 'POST',
    url: '/v1/completions',
    body: {
      model: 'tiny',
      prompt: [1, 4, 4, 8],
      max_completion_tokens: 5,
      temperature: 0.7,
      seed: 5,
      n: 1,
      stream: false,
      logprobs: null,
      presence_penalty: 0,
      user: 'someone',
      return_token_ids: true,
    },
  },
  { custom_id: 'overrun', prompt: [1, 2], max_tokens: 1_000_000 },
  { custom_id: 'two-choices', prompt: [1, 2], n: 2, temperature: 0, max_tokens: 3, return_token_ids: true },
].map((line) => JSON.stringify(line));

describe.skipIf(engineUnavailableReason !== null)('seesaw run with stdin and stdout', () => {
  let dir: string;
  let modelDir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-stdio-'));
    modelDir = join(dir, 'tiny-model');
    const made = seesaw([
      'gen-model',
      '--shape',
      'tiny',
      '--seed',
      '4',
      '--dtype',
      'bf16',
      '--out',
      modelDir,
    ]);
    expect(made.status).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the same records as a file run, and the summary to stderr', () => {
    const inputPath = join(dir, 'in.jsonl');
    const outputPath = join(dir, 'out.jsonl');
    writeFileSync(inputPath, `${LINES.join('\n')}\n`);
    const fromFiles = seesaw(['run', '--model', modelDir, '--input', inputPath, '--output', outputPath]);
    expect(fromFiles.status).toBe(0);
    const piped = seesaw(
      ['run', '--model', modelDir, '--input', '-', '--output', '-'],
      `${LINES.join('\n')}\n`,
    );
    expect(piped.status).toBe(0);
    // stdout holds the records and nothing else: every line is a record.
    const expected = essences(readFileSync(outputPath, 'utf8'));
    expect(essences(piped.stdout)).toEqual(expected);
    expect(piped.stderr).toMatch(/3 ok, 1 errors/);

    const byId = new Map(expected.map((e) => [e.id, e]));
    expect(byId.get('plain')?.ids).toHaveLength(6);
    expect(byId.get('openai')?.ids).toHaveLength(5);
    expect(byId.get('overrun')?.error).toBe('invalid_request');
    expect(byId.get('two-choices')?.ids).toHaveLength(3);
    const records = readFileSync(outputPath, 'utf8');
    expect(records).toContain('lower max_tokens to at most');
    expect(
      JSON.parse(records.split('\n').find((line) => line.includes('two-choices'))!).response.body.choices,
    ).toHaveLength(2);
  });

  it('cuts the answer before a stop string: the same tokens as without it, up to the stop', () => {
    const inputPath = join(dir, 'stop-in.jsonl');
    const base = {
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    };
    writeFileSync(inputPath, `${JSON.stringify({ custom_id: 'free', ...base })}\n`);
    const free = seesaw(['run', '--model', modelDir, '--input', inputPath, '--output', '-']);
    expect(free.status, free.stderr).toBe(0);
    const freeRecord = JSON.parse(free.stdout.trim()) as BatchOutputRecord;
    const freeChoice = freeRecord.response?.body.choices[0];
    const freeText = freeChoice?.text ?? '';
    expect(freeText.length).toBeGreaterThan(6);
    // A stop string taken from the middle of the free answer.
    const stop = freeText.slice(4, 6);
    const cutAt = freeText.indexOf(stop);
    writeFileSync(
      inputPath,
      `${JSON.stringify({ custom_id: 'stopped', ...base, stop: [stop, 'never-there'] })}\n`,
    );
    const stopped = seesaw(['run', '--model', modelDir, '--input', inputPath, '--output', '-']);
    expect(stopped.status, stopped.stderr).toBe(0);
    const choice = (JSON.parse(stopped.stdout.trim()) as BatchOutputRecord).response?.body.choices[0];
    expect(choice?.text).toBe(freeText.slice(0, cutAt));
    expect(choice?.finish_reason).toBe('stop');
    const ids = choice?.token_ids ?? [];
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThan(freeChoice?.token_ids?.length ?? 0);
    expect(freeChoice?.token_ids?.slice(0, ids.length)).toEqual(ids);
  });
});
