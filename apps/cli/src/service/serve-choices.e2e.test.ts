/**
 * `seesaw serve` driven by the official `openai` client with the fields that shape choices:
 * `n: 3`, `logprobs` / `top_logprobs` and seeded sampling, on single completions and chat. Every
 * choice (text, token ids, finish reason, log probabilities) must equal what `seesaw run` writes
 * for the same lines; and the streamed answers must concatenate to the same texts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../../test/e2e-test-support.ts';
import { type ServeProcess, startServe } from '../../test/serve-test-support.ts';
import type { BatchOutputRecord, SuccessRecord } from '../batch-output.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

const CHAT_TEMPLATE =
  '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';

const COMPLETION_BODY = {
  model: 'tiny',
  prompt: 'The quick brown fox',
  max_tokens: 10,
  n: 3,
  temperature: 0.9,
  seed: 4242,
  logprobs: 3,
  ignore_eos: true,
  return_token_ids: true,
};

const CHAT_BODY = {
  model: 'tiny',
  messages: [{ role: 'user', content: 'Tell me a story' }],
  max_tokens: 9,
  n: 3,
  temperature: 1.1,
  top_p: 0.95,
  seed: 77,
  logprobs: true,
  top_logprobs: 4,
  ignore_eos: true,
};

describe.skipIf(engineUnavailableReason !== null)('seesaw serve: n, logprobs and seeds', () => {
  let dir: string;
  let server: ServeProcess;
  let client: OpenAI;
  /** custom_id -> the body `seesaw run` wrote for that line. */
  const reference = new Map<string, SuccessRecord['response']['body']>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-serve-choices-'));
    const modelDir = join(dir, 'tiny');
    const keyFile = join(dir, 'api-key');
    const generated = await runSeesaw(['gen-model', '--shape', 'tiny', '--out', modelDir]);
    expect(generated.status, generated.stderr).toBe(0);
    const configPath = join(modelDir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, chat_template: CHAT_TEMPLATE }));
    expect((await runSeesaw(['token', '--out', keyFile])).status).toBe(0);

    const input = join(dir, 'lines.jsonl');
    const output = join(dir, 'run-output.jsonl');
    const lines = [
      { custom_id: 'completion', method: 'POST', url: '/v1/completions', body: COMPLETION_BODY },
      { custom_id: 'chat', method: 'POST', url: '/v1/chat/completions', body: CHAT_BODY },
    ];
    writeFileSync(input, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
    const run = await runSeesaw([
      'run',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      output,
      '--threads',
      '1',
    ]);
    expect(run.status, run.stderr).toBe(0);
    for (const text of readFileSync(output, 'utf8')
      .split('\n')
      .filter((line) => line !== '')) {
      const record = JSON.parse(text) as BatchOutputRecord;
      expect(record.error, text).toBeNull();
      reference.set(record.custom_id, (record as SuccessRecord).response.body);
    }

    server = await startServe([
      '--model',
      modelDir,
      '--state-dir',
      join(dir, 'state'),
      '--api-key-file',
      keyFile,
      '--threads',
      '1',
    ]);
    client = new OpenAI({
      apiKey: readFileSync(keyFile, 'utf8').trim(),
      baseURL: server.baseUrl,
      maxRetries: 0,
    });
  }, 180_000);

  afterAll(async () => {
    if (server !== undefined && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('completions with n: 3 and logprobs: 3 give the choices and log probabilities seesaw run writes', async () => {
    const params = { ...COMPLETION_BODY } as unknown as OpenAI.CompletionCreateParamsNonStreaming;
    const completion = await client.completions.create(params);
    const expected = reference.get('completion');
    expect(completion.choices).toHaveLength(3);
    expect(completion.choices).toEqual(expected?.choices);
    expect(completion.usage).toEqual(expected?.usage);
    // Seeded choices differ from each other (choiceSeed), and each has its log probabilities.
    const texts = new Set(completion.choices.map((choice) => choice.text));
    expect(texts.size).toBeGreaterThan(1);
    for (const choice of completion.choices) {
      expect(choice.logprobs?.tokens).toHaveLength(10);
      for (const top of choice.logprobs?.top_logprobs ?? [])
        expect(Object.keys(top).length).toBeLessThanOrEqual(3);
    }
  }, 60_000);

  it('chat with n: 3, logprobs and top_logprobs: 4 gives the choices seesaw run writes', async () => {
    const params = { ...CHAT_BODY } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const completion = await client.chat.completions.create(params);
    const expected = reference.get('chat');
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices).toHaveLength(3);
    expect(completion.choices).toEqual(expected?.choices);
    for (const choice of completion.choices) {
      expect(choice.logprobs?.content).toHaveLength(9);
      for (const entry of choice.logprobs?.content ?? []) expect(entry.top_logprobs).toHaveLength(4);
    }
  }, 60_000);

  /** Streamed pieces per choice index, finish reasons, chunks that carried text, and the usage chunk. */
  async function collect(
    chunks: AsyncIterable<{ choices: { index: number; finish_reason: string | null }[]; usage?: unknown }>,
    textOf: (choice: unknown) => string,
  ) {
    const texts = new Map<number, string>();
    const finishReasons = new Map<number, string | null>();
    const numTextChunks = new Map<number, number>();
    let usage: unknown = null;
    for await (const chunk of chunks) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        const piece = textOf(choice);
        texts.set(choice.index, (texts.get(choice.index) ?? '') + piece);
        if (piece !== '') numTextChunks.set(choice.index, (numTextChunks.get(choice.index) ?? 0) + 1);
        if (choice.finish_reason !== null) finishReasons.set(choice.index, choice.finish_reason);
      }
    }
    return { texts, finishReasons, numTextChunks, usage };
  }

  /** The engine's generated-token counter from /metrics. */
  async function outputTokensTotal(): Promise<number> {
    const metrics = await fetch(new URL('../metrics', `${server.baseUrl}/`), {
      headers: { authorization: `Bearer ${client.apiKey}` },
    });
    const match = /^seesaw_engine_output_tokens_total (\d+)$/m.exec(await metrics.text());
    expect(match).not.toBeNull();
    return Number(match?.[1]);
  }

  /** A stop string the unstopped answer holds in its middle (2 characters, no U+FFFD). */
  function stopStringIn(text: string): string {
    for (let at = Math.floor(text.length / 3); at + 2 <= text.length; at++) {
      const stop = text.slice(at, at + 2);
      if (!stop.includes('\uFFFD') && text.indexOf(stop) === at) return stop;
    }
    throw new Error(`no stop string candidate in ${JSON.stringify(text)}`);
  }

  it('streams completions token by token: n: 2 with a stop string, pieces concatenate to the non-streamed text', async () => {
    const base = {
      model: 'tiny',
      prompt: 'Streaming test',
      max_tokens: 24,
      n: 2,
      temperature: 0.8,
      seed: 99,
      ignore_eos: true,
    } as unknown as OpenAI.CompletionCreateParamsNonStreaming;
    const full = await client.completions.create(base);
    const stop = stopStringIn(full.choices[0].text);
    const params = { ...base, stop };
    const tokensBefore = await outputTokensTotal();
    const stopped = await client.completions.create(params);
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].text).toBe(full.choices[0].text.slice(0, full.choices[0].text.indexOf(stop)));
    // The engine stopped choice 0 at the stop string: fewer tokens generated than 2 x max_tokens.
    expect((await outputTokensTotal()) - tokensBefore).toBeLessThan(2 * 24);

    for (const request of [base, params]) {
      const expected = await client.completions.create(request);
      const streamed = await collect(
        await client.completions.create({
          ...request,
          stream: true,
          stream_options: { include_usage: true },
        }),
        (choice) => (choice as OpenAI.CompletionChoice).text,
      );
      for (const choice of expected.choices) {
        expect(streamed.texts.get(choice.index)).toBe(choice.text);
        expect(streamed.finishReasons.get(choice.index)).toBe(choice.finish_reason);
      }
      expect(streamed.usage).toEqual(expected.usage);
      // Token by token, not one chunk at the end.
      expect(streamed.numTextChunks.get(1) ?? 0).toBeGreaterThan(3);
    }
  }, 60_000);

  it('streams chat with n: 2 token by token; the deltas concatenate to each message', async () => {
    const params = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'Stream a story' }],
      max_tokens: 20,
      n: 2,
      temperature: 0.9,
      seed: 5,
      ignore_eos: true,
    } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const expected = await client.chat.completions.create(params);
    const roles: string[] = [];
    const streamed = await collect(
      await client.chat.completions.create({ ...params, stream: true }),
      (choice) => {
        const delta = (choice as OpenAI.ChatCompletionChunk.Choice).delta;
        if (delta.role) roles.push(delta.role);
        return delta.content ?? '';
      },
    );
    expect(roles).toEqual(['assistant', 'assistant']);
    for (const choice of expected.choices) {
      expect(streamed.texts.get(choice.index)).toBe(choice.message.content);
      expect(streamed.finishReasons.get(choice.index)).toBe(choice.finish_reason);
      expect(streamed.numTextChunks.get(choice.index) ?? 0).toBeGreaterThan(3);
    }
    expect(streamed.usage).toBeNull();
  }, 60_000);
});
