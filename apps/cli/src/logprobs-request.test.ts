import { describe, expect, it } from 'vitest';
import { LineProblems } from './line-problems.ts';
import { readNumLogprobs } from './logprobs-request.ts';
import type { RequestEndpoint } from './request-fields.ts';

function read(object: Record<string, unknown>, endpoint: RequestEndpoint) {
  const problems = new LineProblems();
  const numLogprobs = readNumLogprobs(object, endpoint, problems);
  return { numLogprobs, problems: problems.messages };
}

describe('readNumLogprobs', () => {
  it('reads completions logprobs: N and chat logprobs: true with top_logprobs', () => {
    expect(read({ logprobs: 3 }, 'completions')).toEqual({ numLogprobs: 3, problems: [] });
    expect(read({ logprobs: null, top_logprobs: 0 }, 'completions')).toEqual({
      numLogprobs: undefined,
      problems: [],
    });
    expect(read({ logprobs: false }, 'completions')).toEqual({ numLogprobs: undefined, problems: [] });
    expect(read({ logprobs: true }, 'chat')).toEqual({ numLogprobs: 0, problems: [] });
    expect(read({ logprobs: true, top_logprobs: 20 }, 'chat')).toEqual({ numLogprobs: 20, problems: [] });
    expect(read({ logprobs: false, top_logprobs: null }, 'chat')).toEqual({
      numLogprobs: undefined,
      problems: [],
    });
  });

  it('names what is wrong', () => {
    expect(read({ logprobs: 2 }, 'chat').problems).toEqual([
      'logprobs must be true or false in a chat request, got 2',
    ]);
    expect(read({ top_logprobs: 2 }, 'chat').problems).toEqual(['top_logprobs needs logprobs: true']);
    expect(read({ logprobs: true, top_logprobs: 21 }, 'chat').problems).toEqual([
      'top_logprobs must be an integer in [0, 20], got 21',
    ]);
    expect(read({ logprobs: 1.5 }, 'completions').problems).toEqual([
      'logprobs must be an integer in [0, 5], got 1.5',
    ]);
  });
});
