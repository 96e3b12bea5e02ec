import type { RequestOutput } from '@seesaw/coordinator';
import { describe, expect, it } from 'vitest';
import type { ParsedRequest } from './input-lines.ts';
import { ChoiceGather, choiceIndexOf, choiceRequestsOf, choiceSeed } from './request-choices.ts';

function parsed(prompts: number[][], n: number, seed: number | null): ParsedRequest {
  return {
    lineNumber: 1,
    customId: 'line',
    promptTokenIds: prompts[0],
    prompts,
    promptTexts: prompts.map(() => null),
    n,
    isEchoed: false,
    sampling: { maxTokens: 4, temperature: 1, topP: 1, topK: 0, seed, stopTokenIds: [], ignoreEos: false },
    isTokenIdsReturned: false,
    isChat: false,
    stopStrings: [],
  };
}

describe('request choices', () => {
  it('derives distinct safe seeds per choice; choice 0 keeps the seed', () => {
    for (const seed of [0, 5, -7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
      expect(choiceSeed(seed, 0)).toBe(seed);
      const seeds = Array.from({ length: 50 }, (_, j) => choiceSeed(seed, j)!);
      expect(new Set(seeds).size).toBe(50);
      for (const derived of seeds) expect(Number.isSafeInteger(derived)).toBe(true);
    }
    expect(choiceSeed(null, 3)).toBeNull();
  });

  it('keeps a single choice the request it was, and numbers several as OpenAI does', () => {
    const single = choiceRequestsOf(parsed([[1, 2]], 1, 9), 'line');
    expect(single).toEqual([
      { requestId: 'line', promptTokenIds: [1, 2], sampling: parsed([[1, 2]], 1, 9).sampling },
    ]);
    const several = choiceRequestsOf(parsed([[1], [2, 3]], 2, 9), 'line');
    expect(several.map((r) => [r.requestId, r.promptTokenIds, r.sampling.seed])).toEqual([
      ['line#0', [1], 9],
      ['line#1', [1], choiceSeed(9, 1)],
      ['line#2', [2, 3], 9],
      ['line#3', [2, 3], choiceSeed(9, 1)],
    ]);
    expect(several.map((r) => choiceIndexOf(r.requestId, 'line'))).toEqual([0, 1, 2, 3]);
    expect(() => choiceIndexOf('other#1', 'line')).toThrow(
      "engine request 'other#1' is not a choice of 'line'",
    );
  });

  it('gathers outputs in choice order whatever order they finish in', () => {
    const gather = new ChoiceGather(3);
    const output = (id: string) => ({ requestId: id }) as RequestOutput;
    expect(gather.add(2, output('c'))).toBeNull();
    expect(gather.add(0, output('a'))).toBeNull();
    expect(gather.add(1, output('b'))?.map((o) => o.requestId)).toEqual(['a', 'b', 'c']);
    expect(() => new ChoiceGather(1).add(0, output('a')) && gather.add(1, output('b'))).toThrow(
      'choice 1 finished twice',
    );
  });
});
