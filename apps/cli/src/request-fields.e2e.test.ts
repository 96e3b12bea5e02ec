/**
 * The OpenAI request fields that change what is generated, through `seesaw run` in a real child
 * process on the generated tiny model, checked against the float64 reference model:
 * presence/frequency penalties, log probabilities, n choices, lists of prompts and echo.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, loadReferenceWeights, ReferenceModel } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../test/e2e-test-support.ts';
import type { BatchOutputRecord } from './batch-output.ts';
import type { ChatLogprobs, CompletionLogprobs } from './logprobs-output.ts';
import { choiceSeed } from './request-choices.ts';

const engineUnavailableReason = await findEngineUnavailableReason();
/** The generated model the reference reads (set by beforeAll). */
let modelDirForReference = '';

/** Runs the lines through `seesaw run` (extra flags appended) and returns the records by custom_id. */
async function runLines(
  dir: string,
  modelDir: string,
  lines: object[],
  flags: string[] = [],
): Promise<Map<string, BatchOutputRecord>> {
  const inputPath = join(dir, 'in.jsonl');
  const outputPath = join(dir, 'out.jsonl');
  writeFileSync(inputPath, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
  const run = await runSeesaw([
    'run',
    '--model',
    modelDir,
    '--input',
    inputPath,
    '--output',
    outputPath,
    ...flags,
  ]);
  expect(run.status, run.stderr).toBe(0);
  const records = readFileSync(outputPath, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as BatchOutputRecord);
  return new Map(records.map((record) => [record.custom_id, record]));
}

/**
 * Checks each greedy output against the float64 reference model's logits for its prefix with
 * OpenAI's penalties applied over the outputs before it; returns how many steps were decided
 * clearly enough to check.
 */
function checkGreedyAgainstReference(
  prompt: number[],
  outputs: number[],
  presence: number,
  frequency: number,
): number {
  const checkpoint = Checkpoint.open(modelDirForReference);
  const reference = new ReferenceModel(checkpoint.config, loadReferenceWeights(checkpoint));
  checkpoint.close();
  let logits = reference.forward(prompt).at(-1)!;
  const counts = new Map<number, number>();
  let checked = 0;
  for (const output of outputs) {
    const penalized = Array.from(logits, (logit, id) => {
      const count = counts.get(id) ?? 0;
      return logit - count * frequency - (count > 0 ? presence : 0);
    });
    const order = penalized.map((_, id) => id).sort((a, b) => penalized[b] - penalized[a]);
    if (penalized[order[0]] - penalized[order[1]] > 1e-3 * Math.abs(penalized[order[0]])) {
      expect(output).toBe(order[0]);
      checked++;
    }
    counts.set(output, (counts.get(output) ?? 0) + 1);
    logits = reference.forward([output])[0];
  }
  return checked;
}

/** float64 log-softmax of the reference model's logits after each prefix of prompt + outputs. */
function referenceLogprobs(prompt: number[], outputs: number[]): number[][] {
  const checkpoint = Checkpoint.open(modelDirForReference);
  const reference = new ReferenceModel(checkpoint.config, loadReferenceWeights(checkpoint));
  checkpoint.close();
  const rows = [
    reference.forward(prompt).at(-1)!,
    ...outputs.slice(0, -1).map((id) => reference.forward([id])[0]),
  ];
  return rows.map((logits) => {
    const max = Math.max(...logits);
    const logSum = Math.log(logits.reduce((sum, v) => sum + Math.exp(v - max), 0));
    return Array.from(logits, (v) => v - max - logSum);
  });
}

/**
 * Device logits are float32 sums over bf16 weights; the reference sums in float64. Their
 * difference on this model is near 1e-5 of the logits' scale (a few units): 2e-3 absolute catches
 * a wrong row, a skipped softmax term or penalized instead of raw logits.
 */
const LOGPROB_TOLERANCE = 2e-3;

function tokenIdsOf(record: BatchOutputRecord | undefined): number[] {
  const ids = record?.response?.body.choices[0].token_ids;
  if (!ids) throw new Error(`no token ids in ${JSON.stringify(record)}`);
  return ids;
}

/** Outputs that repeat an earlier output of the same answer. */
function repeats(ids: number[]): number {
  return ids.length - new Set(ids).size;
}

describe.skipIf(engineUnavailableReason !== null)('OpenAI request fields through seesaw run', () => {
  let dir: string;
  let modelDir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-fields-'));
    modelDir = join(dir, 'tiny-model');
    modelDirForReference = modelDir;
    const made = await runSeesaw([
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
    expect(made.status, made.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a penalized greedy request picks the float64 reference argmax of the penalized logits', async () => {
    const base = {
      prompt: [1, 5, 9, 5],
      max_tokens: 40,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    };
    const records = await runLines(dir, modelDir, [
      { custom_id: 'free', ...base },
      { custom_id: 'zero', ...base, presence_penalty: 0, frequency_penalty: 0 },
      { custom_id: 'penalized', ...base, presence_penalty: 1.5, frequency_penalty: 1 },
      { custom_id: 'rewarded', ...base, presence_penalty: -2 },
    ]);
    const free = tokenIdsOf(records.get('free'));
    expect(tokenIdsOf(records.get('zero'))).toEqual(free);
    // A negative penalty rewards repeating: greedy then sticks to a token it chose.
    expect(repeats(tokenIdsOf(records.get('rewarded')))).toBeGreaterThan(repeats(free) + 10);
    const penalized = tokenIdsOf(records.get('penalized'));
    expect(penalized).toHaveLength(40);
    const checked = checkGreedyAgainstReference(base.prompt, penalized, 1.5, 1);
    // Steps whose best two penalized logits are too close for float32 to order are skipped.
    expect(checked).toBeGreaterThan(30);
  });

  it('returns log probabilities of the raw logits in the completions and chat shapes', async () => {
    const configPath = join(modelDir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(
      configPath,
      JSON.stringify({ ...config, chat_template: '{% for m in messages %}{{ m.content }}{% endfor %}' }),
    );
    const prompt = [1, 40, 300, 7];
    const base = { max_tokens: 8, ignore_eos: true, return_token_ids: true };
    const records = await runLines(dir, modelDir, [
      // Sampled with a temperature and penalized: the log probabilities stay those of the raw logits.
      {
        custom_id: 'completion',
        prompt,
        ...base,
        temperature: 0.9,
        seed: 11,
        logprobs: 3,
        presence_penalty: 1,
      },
      {
        custom_id: 'chat',
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          messages: [{ role: 'user', content: 'Once upon' }],
          ...base,
          temperature: 0,
          logprobs: true,
          top_logprobs: 2,
        },
      },
      { custom_id: 'none', prompt, ...base, temperature: 0 },
      { custom_id: 'bad', prompt, logprobs: 6 },
    ]);
    expect(records.get('none')?.response?.body.choices[0].logprobs).toBeNull();
    expect(records.get('bad')?.error?.message).toContain('logprobs must be an integer in [0, 5], got 6');

    const completion = records.get('completion')!.response!.body;
    const ids = completion.choices[0].token_ids!;
    const shaped = completion.choices[0].logprobs as CompletionLogprobs;
    const expected = referenceLogprobs(prompt, ids);
    expect(shaped.tokens).toHaveLength(ids.length);
    expect(shaped.tokens.join('')).toBe(completion.choices[0].text);
    expect(shaped.text_offset[0]).toBe(0);
    ids.forEach((id, i) => {
      expect(Math.abs(shaped.token_logprobs[i] - expected[i][id])).toBeLessThan(LOGPROB_TOLERANCE);
      const top = Object.values(shaped.top_logprobs[i]);
      expect(top).toHaveLength(3);
      const best = [...expected[i]].sort((a, b) => b - a);
      top.forEach((logprob, rank) => {
        expect(Math.abs(logprob - best[rank])).toBeLessThan(LOGPROB_TOLERANCE);
      });
    });

    const chat = records.get('chat')!.response!.body;
    const chatIds = chat.choices[0].token_ids!;
    const content = (chat.choices[0].logprobs as ChatLogprobs).content;
    const chatExpected = referenceLogprobs(chat.prompt_token_ids!, chatIds);
    expect(content).toHaveLength(chatIds.length);
    chatIds.forEach((id, i) => {
      expect(Math.abs(content[i].logprob - chatExpected[i][id])).toBeLessThan(LOGPROB_TOLERANCE);
      // Greedy: the chosen token is the most likely one.
      expect(content[i].top_logprobs).toHaveLength(2);
      expect(content[i].top_logprobs[0].logprob).toBe(content[i].logprob);
      expect(Buffer.from(content[i].bytes).toString('utf8')).toBe(content[i].token);
    });
  });

  it('answers n choices and lists of prompts as OpenAI numbers them, and echoes the prompt', async () => {
    const ids = { max_tokens: 6, ignore_eos: true, return_token_ids: true };
    const records = await runLines(dir, modelDir, [
      { custom_id: 'n3', prompt: [1, 7, 9], n: 3, temperature: 0.9, seed: 5, ...ids },
      ...[0, 1, 2].map((j) => ({
        custom_id: `seed${j}`,
        prompt: [1, 7, 9],
        temperature: 0.9,
        seed: choiceSeed(5, j),
        ...ids,
      })),
      { custom_id: 'texts', prompt: ['Once upon', 'a time'], temperature: 0, ...ids },
      { custom_id: 'text0', prompt: 'Once upon', temperature: 0, ...ids },
      { custom_id: 'text1', prompt: 'a time', temperature: 0, ...ids },
      {
        custom_id: 'id-lists',
        prompt: [
          [1, 2, 3],
          [4, 5],
        ],
        n: 2,
        temperature: 0,
        ...ids,
      },
      { custom_id: 'echo', prompt: 'Once upon', echo: true, temperature: 0, ...ids },
      { custom_id: 'echo-logprobs', prompt: 'Once upon', echo: true, logprobs: 1 },
      { custom_id: 'too-many', prompt: [[1], [2]], n: 65 },
    ]);
    const body = (id: string) => records.get(id)!.response!.body;
    const choiceIds = (id: string) => body(id).choices.map((choice) => choice.token_ids);

    // Choice j samples with choiceSeed(seed, j): choice 0 is the n: 1 request itself.
    expect(body('n3').choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(choiceIds('n3')).toEqual([0, 1, 2].map((j) => choiceIds(`seed${j}`)[0]));
    expect(new Set(choiceIds('n3').map((c) => JSON.stringify(c))).size).toBeGreaterThan(1);
    expect(body('n3').usage.completion_tokens).toBe(18);

    // A list of prompts: one choice per prompt, each the same as that prompt alone.
    expect(choiceIds('texts')).toEqual([choiceIds('text0')[0], choiceIds('text1')[0]]);
    expect(body('texts').usage.prompt_tokens).toBe(
      body('text0').usage.prompt_tokens + body('text1').usage.prompt_tokens,
    );
    const lists = body('id-lists').choices;
    expect(lists.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    // Greedy: both choices of a prompt agree; the prompts differ.
    expect(lists[0].token_ids).toEqual(lists[1].token_ids);
    expect(lists[2].token_ids).toEqual(lists[3].token_ids);
    expect(lists[0].token_ids).not.toEqual(lists[2].token_ids);

    expect(body('echo').choices[0].text).toBe(`Once upon${body('text0').choices[0].text}`);
    expect(body('echo').choices[0].token_ids).toEqual(choiceIds('text0')[0]);
    expect(records.get('echo-logprobs')?.error?.message).toContain('echo with logprobs is not supported');
    expect(records.get('too-many')?.error?.message).toContain(
      '2 prompts x n 65 is more than the 128 choices',
    );
  });

  it('stops generating at the token that completes a stop string, with the answer of the post-hoc cut', async () => {
    const base = {
      prompt: 'Once upon a time',
      max_tokens: 30,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    };
    const free = (await runLines(dir, modelDir, [{ custom_id: 'free', ...base }])).get('free')!.response!
      .body;
    const freeText = free.choices[0].text!;
    const stop = freeText.slice(5, 7);
    const inputPath = join(dir, 'stop.jsonl');
    writeFileSync(
      inputPath,
      `${JSON.stringify({ custom_id: 'stopped', ...base, stop: [stop, 'never-there'] })}\n`,
    );
    const run = await runSeesaw(['run', '--model', modelDir, '--input', inputPath, '--output', '-']);
    expect(run.status, run.stderr).toBe(0);
    const choice = (JSON.parse(run.stdout.trim()) as BatchOutputRecord).response!.body.choices[0];
    expect(choice.text).toBe(freeText.slice(0, freeText.indexOf(stop)));
    expect(choice.finish_reason).toBe('stop');
    // The engine generated only the kept tokens: the summary counts what it generated.
    const generated = Number(/Tokens: \d+ prompt, (\d+) output/.exec(run.stderr)?.[1]);
    expect(generated).toBe(choice.token_ids!.length);
    expect(generated).toBeLessThan(30);
  });

  it('device workers (D2, P2, T2) give the same penalized choices and log probabilities as one device', async () => {
    const lines = [
      {
        custom_id: 'a',
        prompt: [1, 5, 9],
        max_tokens: 10,
        temperature: 0,
        presence_penalty: -1.5,
        logprobs: 2,
      },
      {
        custom_id: 'b',
        prompt: [1, 6, 9],
        n: 2,
        seed: 4,
        max_tokens: 8,
        temperature: 0.8,
        frequency_penalty: 0.5,
      },
    ].map((line) => ({ ...line, ignore_eos: true, return_token_ids: true }));
    const choicesOf = (records: Map<string, BatchOutputRecord>) =>
      ['a', 'b'].map((id) => records.get(id)!.response!.body.choices);
    const alone = choicesOf(await runLines(dir, modelDir, lines));
    for (const config of ['D2', 'P2', 'T2']) {
      const split = choicesOf(await runLines(dir, modelDir, lines, ['--devices', '2', '--config', config]));
      expect(
        split.map((c) => c.map((choice) => choice.token_ids)),
        config,
      ).toEqual(alone.map((c) => c.map((choice) => choice.token_ids)));
      // T2 sums the logits in another order: equal to float32 rounding, not to the bit.
      const got = (split[0][0].logprobs as CompletionLogprobs).token_logprobs;
      const want = (alone[0][0].logprobs as CompletionLogprobs).token_logprobs;
      got.forEach((logprob, i) => {
        expect(Math.abs(logprob - want[i]), `${config} token ${i}`).toBeLessThan(1e-5);
      });
    }
  });
});
