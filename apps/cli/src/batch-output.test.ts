import { describe, expect, it } from 'vitest';
import { errorRecord, formatRecordLine, isSuccessRecord, successRecord } from './batch-output.ts';

const RESULT = {
  customId: 'c1',
  modelName: 'tiny-model',
  promptTokenIds: [1, 2, 3],
  outputTokenIds: [7, 8],
  text: 'hi',
  finishReason: 'length' as const,
  isTokenIdsReturned: false,
  createdSeconds: 1_700_000_000,
};

describe('success records', () => {
  it('follow the OpenAI batch output format for /v1/completions', () => {
    const record = successRecord(RESULT);
    expect(record.id).toMatch(/^batch_req_[0-9a-f]{24}$/);
    expect(record.response.request_id).toMatch(/^req_[0-9a-f]{24}$/);
    expect(record.response.body.id).toMatch(/^cmpl-[0-9a-f]{24}$/);
    expect(record).toEqual({
      id: record.id,
      custom_id: 'c1',
      response: {
        status_code: 200,
        request_id: record.response.request_id,
        body: {
          id: record.response.body.id,
          object: 'text_completion',
          created: 1_700_000_000,
          model: 'tiny-model',
          choices: [{ index: 0, text: 'hi', finish_reason: 'length', logprobs: null }],
          usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
        },
      },
      error: null,
    });
  });

  it('carry token_ids on the choice and prompt_token_ids on the body when asked', () => {
    const record = successRecord({ ...RESULT, isTokenIdsReturned: true, finishReason: 'stop' });
    expect(record.response.body.choices[0].token_ids).toEqual([7, 8]);
    expect(record.response.body.prompt_token_ids).toEqual([1, 2, 3]);
    expect(record.response.body.choices[0].finish_reason).toBe('stop');
  });

  it('get fresh ids each time', () => {
    expect(successRecord(RESULT).id).not.toBe(successRecord(RESULT).id);
  });
});

describe('error records', () => {
  it('have a null response and a code + message', () => {
    const record = errorRecord('request-3', 'invalid_json', 'line 3: invalid JSON');
    expect(record).toEqual({
      id: record.id,
      custom_id: 'request-3',
      response: null,
      error: { code: 'invalid_json', message: 'line 3: invalid JSON' },
    });
  });
});

describe('record lines', () => {
  it('are one JSON object and a newline, and read back as success or not', () => {
    const line = formatRecordLine(successRecord(RESULT));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(isSuccessRecord(JSON.parse(line))).toBe(true);
    expect(isSuccessRecord(JSON.parse(formatRecordLine(errorRecord('x', 'c', 'm'))))).toBe(false);
    expect(isSuccessRecord({ custom_id: 'x', response: { status_code: 400 }, error: null })).toBe(false);
    expect(isSuccessRecord({ response: { status_code: 200 }, error: null })).toBe(false);
    expect(isSuccessRecord(null)).toBe(false);
  });
});
