import { describe, expect, it } from 'vitest';
import {
  DatasetError,
  jsonlDataset,
  parseLengthsCsv,
  randomDataset,
  sampleLengthsDataset,
} from './bench-dataset.ts';
import { SeededRandom } from './seeded-random.ts';

describe('SeededRandom', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new SeededRandom(7).tokenIds(50, 1000);
    expect(new SeededRandom(7).tokenIds(50, 1000)).toEqual(a);
    expect(new SeededRandom(8).tokenIds(50, 1000)).not.toEqual(a);
  });

  it('draws roughly uniform floats in [0, 1)', () => {
    const random = new SeededRandom(1);
    const counts = new Array(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const u = random.nextFloat();
      expect(u >= 0 && u < 1).toBe(true);
      counts[Math.floor(u * 10)]++;
    }
    // Each decile holds 10% +- 5 standard deviations of a binomial(n, 0.1).
    const sd = Math.sqrt(n * 0.1 * 0.9);
    for (const count of counts) expect(Math.abs(count - n / 10)).toBeLessThan(5 * sd);
  });

  it('samples distinct indices', () => {
    const indices = new SeededRandom(3).sampleIndices(20, 20);
    expect([...indices].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(() => new SeededRandom(3).sampleIndices(2, 3)).toThrow(RangeError);
  });
});

describe('random dataset', () => {
  it('has the asked lengths, ids inside the vocabulary, ignore_eos and fixed output', () => {
    const requests = randomDataset({ numPrompts: 5, inputLen: 12, outputLen: 7, vocabSize: 50, seed: 1 });
    expect(requests).toHaveLength(5);
    for (const request of requests) {
      expect(request.promptTokenIds).toHaveLength(12);
      expect(request.promptTokenIds.every((id) => Number.isInteger(id) && id >= 0 && id < 50)).toBe(true);
      expect(request.sampling).toMatchObject({ maxTokens: 7, ignoreEos: true, temperature: 1 });
    }
    expect(randomDataset({ numPrompts: 5, inputLen: 12, outputLen: 7, vocabSize: 50, seed: 1 })).toEqual(
      requests,
    );
  });
});

describe('length-trace dataset', () => {
  const csv = 'prompt_tokens,output_tokens\n10,5\n3000,10\n20,30\r\n0,4\n7,1\n';

  it('parses rows and reports bad ones by line', () => {
    expect(parseLengthsCsv(csv, 't.csv')).toEqual([
      { promptTokens: 10, outputTokens: 5 },
      { promptTokens: 3000, outputTokens: 10 },
      { promptTokens: 20, outputTokens: 30 },
      { promptTokens: 0, outputTokens: 4 },
      { promptTokens: 7, outputTokens: 1 },
    ]);
    expect(() => parseLengthsCsv('a,b\n1,2\n', 't.csv')).toThrow(
      "t.csv: first line must be the header 'prompt_tokens,output_tokens'",
    );
    expect(() => parseLengthsCsv('prompt_tokens,output_tokens\n1,2\n1;2\n', 't.csv')).toThrow(
      "t.csv:3: expected two non-negative integers, got '1;2'",
    );
  });

  it('samples only rows that fit, with their lengths, deterministically', () => {
    const pairs = parseLengthsCsv(csv, 't.csv');
    const options = { numPrompts: 3, vocabSize: 100, maxModelLen: 2048, seed: 4 };
    const { requests, numFiltered } = sampleLengthsDataset(pairs, options);
    expect(numFiltered).toBe(2);
    const lengths = requests
      .map((r) => [r.promptTokenIds.length, r.sampling.maxTokens])
      .sort((x, y) => x[0] - y[0]);
    expect(lengths).toEqual([
      [7, 1],
      [10, 5],
      [20, 30],
    ]);
    expect(sampleLengthsDataset(pairs, options)).toEqual({ requests, numFiltered });
    expect(() => sampleLengthsDataset(pairs, { ...options, numPrompts: 4 })).toThrow(DatasetError);
    const overridden = sampleLengthsDataset(pairs, { ...options, numPrompts: 1, outputLen: 9 });
    expect(overridden.requests[0].sampling.maxTokens).toBe(9);
  });
});

describe('JSONL dataset', () => {
  const context = { vocabSize: 100, maxModelLen: 64, tokenizer: null };

  it('takes the first N requests with their own sampling, optionally overriding the output length', () => {
    const content =
      '{"prompt": [1,2], "max_tokens": 3}\n{"prompt": [4], "temperature": 0}\n{"prompt": [5]}\n';
    const requests = jsonlDataset(content, 'p.jsonl', { numPrompts: 2 }, context);
    expect(requests.map((r) => r.promptTokenIds)).toEqual([[1, 2], [4]]);
    expect(requests[0].sampling.maxTokens).toBe(3);
    expect(requests[1].sampling.temperature).toBe(0);
    expect(
      jsonlDataset(content, 'p.jsonl', { numPrompts: 1, outputLen: 8 }, context)[0].sampling.maxTokens,
    ).toBe(8);
  });

  it('fails on an invalid line or too few requests', () => {
    expect(() => jsonlDataset('{"prompt": []}\n', 'p.jsonl', { numPrompts: 1 }, context)).toThrow(
      'p.jsonl: line 1: prompt is empty',
    );
    expect(() => jsonlDataset('{"prompt": [1]}\n', 'p.jsonl', { numPrompts: 2 }, context)).toThrow(
      'p.jsonl has only 1 requests; asked for 2',
    );
  });
});
