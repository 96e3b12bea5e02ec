import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  arxivWorkload,
  loadWorkload,
  parseLengthsCsv,
  sampleRequests,
  shareGptWorkload,
  WorkloadError,
} from './workloads.ts';

describe('workloads', () => {
  it('ShareGPT-like: 2000 requests by default, with the paper filters', () => {
    const { requests } = shareGptWorkload();
    expect(requests).toHaveLength(2000);
    for (const r of requests) {
      expect(r.promptTokens).toBeGreaterThanOrEqual(100);
      expect(r.outputTokens).toBeGreaterThanOrEqual(20);
      expect(r.promptTokens + r.outputTokens).toBeLessThanOrEqual(4096);
    }
  });

  it('arxiv-like: 500 requests, long prompts and short outputs', () => {
    const { requests } = arxivWorkload();
    expect(requests).toHaveLength(500);
    const meanPrompt = requests.reduce((s, r) => s + r.promptTokens, 0) / requests.length;
    const meanOutput = requests.reduce((s, r) => s + r.outputTokens, 0) / requests.length;
    expect(meanPrompt).toBeGreaterThan(4 * meanOutput);
    for (const r of requests) expect(r.promptTokens + r.outputTokens).toBeLessThanOrEqual(4096);
  });

  it('sampling is fixed by the seed and differs between seeds', () => {
    const a = arxivWorkload({ numRequests: 50, seed: 7 }).requests;
    expect(arxivWorkload({ numRequests: 50, seed: 7 }).requests).toEqual(a);
    expect(arxivWorkload({ numRequests: 50, seed: 8 }).requests).not.toEqual(a);
  });

  it('samples without replacement', () => {
    const rows = Array.from({ length: 100 }, (_, i) => ({ promptTokens: i + 1, outputTokens: 1 }));
    const picked = sampleRequests(rows, 100, 3).map((r) => r.promptTokens);
    expect(new Set(picked).size).toBe(100);
  });

  it('reads JSONL and CSV files, constant workloads, and names bad input', () => {
    const dir = mkdtempSync(join(tmpdir(), 'planner-workload-'));
    const jsonl = join(dir, 'w.jsonl');
    writeFileSync(
      jsonl,
      '{"prompt_tokens": 10, "output_tokens": 3}\n\n{"prompt_tokens": 5, "output_tokens": 1}\n',
    );
    expect(loadWorkload(jsonl).requests).toEqual([
      { promptTokens: 10, outputTokens: 3 },
      { promptTokens: 5, outputTokens: 1 },
    ]);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"prompt_tokens": 0, "output_tokens": 3}\n');
    expect(() => loadWorkload(bad)).toThrow(/bad\.jsonl:1: prompt_tokens and output_tokens must be positive/);
    expect(parseLengthsCsv('prompt_tokens,output_tokens\n3,4\n', 'x')).toEqual([
      { promptTokens: 3, outputTokens: 4 },
    ]);
    expect(() => parseLengthsCsv('a,b\n1,2\n', 'x.csv')).toThrow(WorkloadError);
    expect(loadWorkload('constant:3000:300', { numRequests: 4 }).requests).toEqual(
      Array.from({ length: 4 }, () => ({ promptTokens: 3000, outputTokens: 300 })),
    );
    expect(() => loadWorkload('nonsense')).toThrow(/not sharegpt, arxiv, constant/);
  });
});
