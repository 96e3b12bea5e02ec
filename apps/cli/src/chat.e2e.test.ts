/**
 * Chat requests end to end: a generated model given a chat template in tokenizer_config.json,
 * `/v1/chat/completions` batch lines and plain `messages` lines through the real `seesaw run`.
 * The prompt is the template's rendering (checked against @huggingface/jinja and the tokenizer
 * here), answered as `chat.completion` records with the same tokens as the same prompt sent as
 * token ids; a model without a template answers chat lines with a clear error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { SeesawTokenizer } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, SEESAW_BIN } from '../test/e2e-test-support.ts';
import type { BatchOutputRecord, SuccessRecord } from './batch-output.ts';
import { REPO_ROOT } from './model-cache.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

const TEMPLATE =
  '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}' +
  '{% if add_generation_prompt %}[assistant] {% endif %}';

function seesaw(args: string[]) {
  const result = spawnSync(process.execPath, [SEESAW_BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function records(path: string): Map<string, BatchOutputRecord> {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  return new Map(lines.map((line) => JSON.parse(line) as BatchOutputRecord).map((r) => [r.custom_id, r]));
}

function success(record: BatchOutputRecord | undefined): SuccessRecord {
  if (record?.response == null) throw new Error(`expected a completed record, got ${JSON.stringify(record)}`);
  return record as SuccessRecord;
}

const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: [{ type: 'text', text: 'Once upon' }] },
];

describe.skipIf(engineUnavailableReason !== null)('chat requests through seesaw run', () => {
  let dir: string;
  let modelDir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-chat-'));
    modelDir = join(dir, 'tiny');
    expect(
      seesaw(['gen-model', '--shape', 'tiny', '--seed', '6', '--dtype', 'bf16', '--out', modelDir]).status,
    ).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('renders the template, answers chat.completion records, and refuses chat without a template', () => {
    const inputPath = join(dir, 'in.jsonl');
    const lines = [
      {
        custom_id: 'chat-batch',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'tiny', messages: MESSAGES, max_tokens: 6, temperature: 0, return_token_ids: true },
      },
      { custom_id: 'chat-plain', messages: MESSAGES, max_completion_tokens: 6, temperature: 0 },
      { custom_id: 'chat-bad', messages: [{ role: 'user', content: 7 }] },
    ];
    writeFileSync(inputPath, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);

    // Without a template: every chat line is an error record naming why; nothing else fails.
    const noTemplate = join(dir, 'no-template.jsonl');
    const refused = seesaw(['run', '--model', modelDir, '--input', inputPath, '--output', noTemplate]);
    expect(refused.status).toBe(0);
    const refusedRecords = records(noTemplate);
    expect(refusedRecords.get('chat-batch')?.error?.message).toContain('the model has no chat template');
    expect(refusedRecords.get('chat-bad')?.error?.message).toContain('messages[0].content must be a string');

    const configPath = join(modelDir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, chat_template: TEMPLATE }));
    const outputPath = join(dir, 'out.jsonl');
    expect(seesaw(['run', '--model', modelDir, '--input', inputPath, '--output', outputPath]).status).toBe(0);
    const chatRecords = records(outputPath);
    const batch = success(chatRecords.get('chat-batch'));
    const plain = success(chatRecords.get('chat-plain'));
    expect(batch.response.body.object).toBe('chat.completion');
    expect(batch.response.body.id).toMatch(/^chatcmpl-/);
    const choice = batch.response.body.choices[0];
    expect(choice.message?.role).toBe('assistant');
    expect(plain.response.body.choices[0].message?.content).toBe(choice.message?.content);

    // The prompt is exactly the template's text, tokenized without adding a second BOS.
    const tokenizer = SeesawTokenizer.load(modelDir);
    const bos = typeof config.bos_token === 'string' ? config.bos_token : (config.bos_token?.content ?? '');
    const text = new Template(TEMPLATE).render({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Once upon' },
      ],
      add_generation_prompt: true,
      bos_token: bos,
    });
    expect(text).toContain('[user] Once upon\n[assistant] ');
    const promptIds = tokenizer?.encodeWithoutSpecialTokens(text);
    expect(batch.response.body.prompt_token_ids).toEqual(promptIds);

    // The same prompt as token ids on /v1/completions gives the same tokens.
    const idsPath = join(dir, 'ids.jsonl');
    writeFileSync(
      idsPath,
      `${JSON.stringify({ custom_id: 'ids', prompt: promptIds, max_tokens: 6, temperature: 0, return_token_ids: true })}\n`,
    );
    const idsOut = join(dir, 'ids-out.jsonl');
    expect(seesaw(['run', '--model', modelDir, '--input', idsPath, '--output', idsOut]).status).toBe(0);
    const ids = success(records(idsOut).get('ids'));
    expect(choice.token_ids).toEqual(ids.response.body.choices[0].token_ids);
    expect(ids.response.body.object).toBe('text_completion');
  });
});
