import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_TOKENS,
  type InputLineResult,
  type InputValidationContext,
  type ParsedRequest,
  parseInputFile,
  parseInputLine,
} from './input-lines.ts';

/** BOS then one id per character: enough to tell text prompts went through the tokenizer. */
const fakeTokenizer = { encode: (text: string) => [1, ...[...text].map((c) => c.charCodeAt(0) % 100)] };
const WITH_TOKENIZER: InputValidationContext = { vocabSize: 100, maxModelLen: 32, tokenizer: fakeTokenizer };
const NO_TOKENIZER: InputValidationContext = { vocabSize: 100, maxModelLen: 32, tokenizer: null };

function ok(result: InputLineResult): ParsedRequest {
  if (!result.isOk) throw new Error(`expected success, got ${result.error.message}`);
  return result.request;
}

function errorOf(result: InputLineResult) {
  if (result.isOk) throw new Error('expected an error');
  return result.error;
}

function line(value: unknown, lineNumber = 1, context = NO_TOKENIZER): InputLineResult {
  return parseInputLine(JSON.stringify(value), lineNumber, context);
}

describe('plain request lines', () => {
  it('takes token-id prompts with defaults like the OpenAI completions API', () => {
    const request = ok(line({ prompt: [5, 6, 7] }, 4));
    expect(request).toEqual({
      lineNumber: 4,
      customId: 'request-4',
      promptTokenIds: [5, 6, 7],
      prompts: [[5, 6, 7]],
      promptTexts: [null],
      n: 1,
      isEchoed: false,
      sampling: {
        maxTokens: DEFAULT_MAX_TOKENS,
        temperature: 1,
        topP: 1,
        topK: 0,
        seed: null,
        stopTokenIds: [],
        ignoreEos: false,
      },
      isTokenIdsReturned: false,
      isChat: false,
      stopStrings: [],
    });
    expect(DEFAULT_MAX_TOKENS).toBe(16);
  });

  it('reads every field', () => {
    const request = ok(
      line({
        custom_id: 'a',
        prompt: [1, 2],
        max_tokens: 8,
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        seed: 1234,
        stop_token_ids: [2, 3],
        ignore_eos: true,
        return_token_ids: true,
      }),
    );
    expect(request.customId).toBe('a');
    expect(request.sampling).toEqual({
      maxTokens: 8,
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      seed: 1234,
      stopTokenIds: [2, 3],
      ignoreEos: true,
    });
    expect(request.isTokenIdsReturned).toBe(true);
  });

  it('treats null fields as absent and top_k -1 as disabled', () => {
    const request = ok(line({ prompt: [1], max_tokens: null, seed: null, top_k: -1, temperature: 0 }));
    expect(ok(line({ prompt: [1], seed: -5 })).sampling.seed).toBe(-5);
    expect(request.sampling.maxTokens).toBe(DEFAULT_MAX_TOKENS);
    expect(request.sampling.seed).toBeNull();
    expect(request.sampling.topK).toBe(0);
    expect(request.sampling.temperature).toBe(0);
  });

  it('encodes text prompts with the tokenizer', () => {
    const request = ok(line({ prompt: 'AB' }, 1, WITH_TOKENIZER));
    expect(request.promptTokenIds).toEqual([1, 65, 66]);
  });
});

describe('OpenAI batch lines', () => {
  it('reads custom_id and the body of a /v1/completions line', () => {
    const request = ok(
      line(
        {
          custom_id: 'req-7',
          method: 'POST',
          url: '/v1/completions',
          body: { model: 'whatever', prompt: 'hi', max_tokens: 5, temperature: 0 },
        },
        3,
        WITH_TOKENIZER,
      ),
    );
    expect(request.customId).toBe('req-7');
    expect(request.lineNumber).toBe(3);
    expect(request.promptTokenIds).toEqual([1, 4, 5]);
    expect(request.sampling.maxTokens).toBe(5);
  });

  it.each([
    [
      { method: 'POST', url: '/v1/completions', body: { prompt: [1] } },
      'custom_id is required in an OpenAI batch line',
    ],
    [
      { custom_id: 'x', method: 'GET', url: '/v1/completions', body: { prompt: [1] } },
      'method must be "POST", got "GET"',
    ],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/chat/completions', body: { prompt: [1] } },
      "unknown field 'prompt' in body",
    ],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/embeddings', body: { prompt: [1] } },
      'url "/v1/embeddings" is not supported: only "/v1/completions" or "/v1/chat/completions"',
    ],
    [
      {
        custom_id: 'x',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { messages: [{ role: 'user', content: 'hi' }] },
      },
      'the model has no chat template',
    ],
    [{ custom_id: 'x', method: 'POST', url: '/v1/completions' }, 'body must be an object, got undefined'],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/completions', body: [1] },
      'body must be an object, got an array',
    ],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/completions', body: { prompt: [1], n: 0 } },
      'n must be an integer in [1, 128], got 0',
    ],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/completions', body: { prompt: [1], model: 3 } },
      'body.model must be a string, got 3',
    ],
    [
      { custom_id: 'x', method: 'POST', url: '/v1/completions', body: { prompt: [1] }, extra: 1 },
      "unknown field 'extra' in batch line",
    ],
  ])('rejects %j', (value, message) => {
    const error = errorOf(line(value, 9));
    expect(error.code).toBe('invalid_request');
    expect(error.lineNumber).toBe(9);
    expect(error.message.startsWith('line 9: ')).toBe(true);
    expect(error.message).toContain(message);
  });
});

describe('line errors', () => {
  it('reports invalid JSON with the line number and a default custom_id', () => {
    const error = errorOf(parseInputLine('{"prompt": [1,', 12, NO_TOKENIZER));
    expect(error).toMatchObject({ lineNumber: 12, customId: 'request-12', code: 'invalid_json' });
    expect(error.message).toMatch(/^line 12: invalid JSON: /);
  });

  it('needs a JSON object', () => {
    expect(errorOf(parseInputLine('[1, 2]', 2, NO_TOKENIZER)).message).toBe(
      'line 2: expected a JSON object, got an array',
    );
    expect(errorOf(parseInputLine('null', 2, NO_TOKENIZER)).message).toBe(
      'line 2: expected a JSON object, got null',
    );
  });

  it.each([
    [{}, 'prompt is required'],
    [{ prompt: 5 }, 'prompt must be a string or an array of token ids, got 5'],
    [{ prompt: ['a', 'b'] }, 'prompt[0]: prompt is text but the model has no tokenizer.json'],
    [
      {
        prompt: [
          [1, 2],
          [1, 200],
        ],
      },
      'prompt[1]: prompt token id 200 at index 1 is outside the vocabulary',
    ],
    [{ prompt: [[1, 2], ['a']] }, 'prompt[1] must be a string or an array of token ids'],
    [{ prompt: [[1, 2], 3] }, 'prompt must be a string, an array of token ids, or a list of either'],
    [{ prompt: [] }, 'prompt is empty'],
    [{ prompt: [1, 100] }, 'prompt token id 100 at index 1 is outside the vocabulary [0, 100)'],
    [{ prompt: [1, -1] }, 'prompt token id -1 at index 1 is outside the vocabulary'],
    [{ prompt: [1, 2.5] }, 'prompt token id 2.5 at index 1'],
    [{ prompt: 'hello' }, 'prompt is text but the model has no tokenizer.json'],
    [{ prompt: Array(32).fill(1) }, "prompt is too long: 32 tokens, but the model's maximum length is 32"],
    [{ prompt: [1], max_tokens: 0 }, 'max_tokens must be an integer >= 1, got 0'],
    [{ prompt: [1], max_tokens: 2.5 }, 'max_tokens must be an integer >= 1, got 2.5'],
    [{ prompt: [1], max_tokens: '5' }, 'max_tokens must be an integer >= 1, got "5"'],
    [{ prompt: [1], temperature: -0.1 }, 'temperature must be a number >= 0, got -0.1'],
    [{ prompt: [1], top_p: 0 }, 'top_p must be a number in (0, 1], got 0'],
    [{ prompt: [1], top_p: 1.5 }, 'top_p must be a number in (0, 1], got 1.5'],
    [{ prompt: [1], top_k: -2 }, 'top_k must be an integer >= -1'],
    [{ prompt: [1], top_k: 1.5 }, 'top_k must be an integer >= -1'],
    [
      { prompt: [1], seed: 2 ** 53 },
      'seed must be an integer in [-9007199254740991, 9007199254740991], got 9007199254740992',
    ],
    [{ prompt: [1], seed: 1.5 }, 'seed must be an integer in'],
    [{ prompt: [1], stop_token_ids: 2 }, 'stop_token_ids must be an array of token ids in [0, 100), got 2'],
    [{ prompt: [1], stop_token_ids: [2, 100] }, 'stop_token_ids must be an array of token ids in [0, 100)'],
    [{ prompt: [1], ignore_eos: 'yes' }, 'ignore_eos must be true or false, got "yes"'],
    [{ prompt: [1], return_token_ids: 1 }, 'return_token_ids must be true or false, got 1'],
    [{ prompt: [1], custom_id: '' }, 'custom_id must be a non-empty string, got ""'],
    [{ prompt: [1], custom_id: 7 }, 'custom_id must be a non-empty string, got 7'],
    [{ prompt: [1], model: 'm' }, "unknown field 'model'"],
    [{ prompt: [1], stream: true }, 'stream: true is not supported: only stream: false in a batch line'],
    [{ prompt: [1], frobnicate: true }, "unknown field 'frobnicate'"],
    [
      { prompt: [1], stop: ['a', 'b', 'c', 'd', 'e'] },
      'stop must be a non-empty string or a list of up to 4',
    ],
    [{ prompt: [1], stop: [''] }, 'stop must be a non-empty string'],
    [{ prompt: [1], stop: 'x' }, "stop strings need the model's tokenizer"],
    [{ prompt: [1], logprobs: 6 }, 'logprobs must be an integer in [0, 5], got 6'],
    [{ prompt: [1], logprobs: true }, 'logprobs must be an integer in [0, 5], got true'],
    [
      { prompt: [1], top_logprobs: 2 },
      'top_logprobs: 2 is for chat requests; completions ask with logprobs: N',
    ],
    [{ prompt: [1], presence_penalty: 2.5 }, 'presence_penalty must be a number in [-2, 2], got 2.5'],
    [{ prompt: [1], frequency_penalty: '1' }, 'frequency_penalty must be a number in [-2, 2]'],
    [{ prompt: [1], logit_bias: { '5': 1 } }, 'logit_bias: {"5":1} is not supported'],
    [{ prompt: [1], echo: 1 }, 'echo must be true or false, got 1'],
    [{ prompt: [1], echo: true, logprobs: 2 }, 'echo with logprobs is not supported'],
    [{ prompt: [[1], [2]], n: 100 }, '2 prompts x n 100 is more than the 128 choices'],
    [
      { prompt: [1, 2, 3], max_tokens: 30 },
      "max_tokens 30 plus the prompt's 3 tokens is more than the model's maximum length of 32 tokens: " +
        'lower max_tokens to at most 29',
    ],
    [{ prompt: [1, 2, 3], max_completion_tokens: 30 }, 'lower max_completion_tokens to at most 29'],
    [
      { prompt: [1], max_tokens: 4, max_completion_tokens: 5 },
      'max_tokens 4 and max_completion_tokens 5 disagree',
    ],
  ])('%j -> %s', (value, message) => {
    const error = errorOf(line(value, 5));
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain(message);
    expect(error.message.startsWith('line 5: ')).toBe(true);
  });

  it('accepts a line as OpenAI clients write it: no-op and informational fields, max_completion_tokens', () => {
    const request = ok(
      line({
        custom_id: 'openai',
        method: 'POST',
        url: '/v1/completions',
        body: {
          model: 'm',
          prompt: [1, 2],
          max_completion_tokens: 29,
          n: 1,
          best_of: 1,
          stream: false,
          stream_options: null,
          echo: false,
          logprobs: null,
          top_logprobs: 0,
          presence_penalty: 0,
          frequency_penalty: 0,
          logit_bias: {},
          suffix: null,
          stop: null,
          user: 'someone',
          metadata: { team: 'a' },
          store: false,
          service_tier: 'auto',
        },
      }),
    );
    expect(request.sampling.maxTokens).toBe(29);
    // Zero penalties leave the request exactly as one without them.
    expect(request.sampling).not.toHaveProperty('presencePenalty');
    expect(request.sampling).not.toHaveProperty('frequencyPenalty');
    expect(request.sampling).not.toHaveProperty('numLogprobs');
    expect(request).toMatchObject({ prompts: [[1, 2]], n: 1, isEchoed: false });
    expect(ok(line({ prompt: [[1], [2, 3]], n: 2, echo: true }))).toMatchObject({
      promptTokenIds: [1],
      prompts: [[1], [2, 3]],
      promptTexts: [null, null],
      n: 2,
      isEchoed: true,
    });
    expect(ok(line({ prompt: [1], logprobs: 0 })).sampling.numLogprobs).toBe(0);
    expect(ok(line({ prompt: [1], logprobs: 5 })).sampling.numLogprobs).toBe(5);
    const penalized = ok(line({ prompt: [1], presence_penalty: -0.5, frequency_penalty: 1.25 }));
    expect(penalized.sampling).toMatchObject({ presencePenalty: -0.5, frequencyPenalty: 1.25 });
    // Without a cap the default 16 is still allowed where less room is left (the run cuts it).
    expect(ok(line({ prompt: new Array(30).fill(1) })).sampling.maxTokens).toBe(DEFAULT_MAX_TOKENS);
  });

  it('an empty text prompt is empty only when the tokenizer gives no ids', () => {
    const emptyTokenizer = { ...WITH_TOKENIZER, tokenizer: { encode: () => [] } };
    expect(errorOf(line({ prompt: '' }, 1, emptyTokenizer)).message).toBe('line 1: prompt is empty');
    expect(ok(line({ prompt: '' }, 1, WITH_TOKENIZER)).promptTokenIds).toEqual([1]);
  });

  it('names every problem of a line and keeps a valid custom_id on the error', () => {
    const error = errorOf(line({ custom_id: 'keep', prompt: [1], max_tokens: 0, top_p: 2 }, 3));
    expect(error.customId).toBe('keep');
    expect(error.message).toBe(
      'line 3: max_tokens must be an integer >= 1, got 0; top_p must be a number in (0, 1], got 2',
    );
  });
});

describe('parseInputFile', () => {
  it('keeps physical line numbers across blank lines and CRLF endings', () => {
    const content = ['{"prompt": [1]}', '', '   ', '{"prompt": [2]}\r', 'nope', ''].join('\n');
    const results = parseInputFile(content, NO_TOKENIZER);
    expect(results).toHaveLength(3);
    expect(ok(results[0]).customId).toBe('request-1');
    expect(ok(results[1]).customId).toBe('request-4');
    expect(errorOf(results[2])).toMatchObject({ lineNumber: 5, code: 'invalid_json' });
  });

  it('gives the later line of a duplicate custom_id an error record', () => {
    const content = [
      '{"custom_id": "a", "prompt": [1]}',
      '{"custom_id": "a", "prompt": [2]}',
      '{"custom_id": "request-4", "prompt": [3]}',
      '{"prompt": [4]}',
    ].join('\n');
    const results = parseInputFile(content, NO_TOKENIZER);
    expect(ok(results[0]).promptTokenIds).toEqual([1]);
    expect(errorOf(results[1])).toEqual({
      lineNumber: 2,
      customId: 'a',
      code: 'duplicate_custom_id',
      message: "line 2: duplicate custom_id 'a' (first used on line 1)",
    });
    expect(ok(results[2]).customId).toBe('request-4');
    // Line 4's default id collides with line 3's explicit one.
    expect(errorOf(results[3]).code).toBe('duplicate_custom_id');
  });

  it('counts an invalid line as having used its custom_id', () => {
    const content = ['{"custom_id": "a", "prompt": []}', '{"custom_id": "a", "prompt": [1]}'].join('\n');
    const results = parseInputFile(content, NO_TOKENIZER);
    expect(errorOf(results[0]).code).toBe('invalid_request');
    expect(errorOf(results[1]).code).toBe('duplicate_custom_id');
  });
});
