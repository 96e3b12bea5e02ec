/**
 * Issue 13 item 3: a huge text prompt is refused by its byte length before the tokenizer runs,
 * with an error that says so (today it was tokenized fully first: ~100x its size in memory).
 */

import { buildByteLevelBpeTokenizer, SeesawTokenizer } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { parseInputLine } from './input-lines.ts';

const built = buildByteLevelBpeTokenizer(2048, 2048);
const tokenizer = SeesawTokenizer.fromObjects(built.tokenizerJson, built.tokenizerConfig);

describe('prompt byte limit', () => {
  it('item 3: refuses a 4 MB prompt line by bytes, without tokenizing it', () => {
    let numEncoded = 0;
    const counting = {
      maxTokenBytes: tokenizer.maxTokenBytes,
      encode: (text: string) => {
        numEncoded++;
        return tokenizer.encode(text);
      },
    };
    const context = { vocabSize: tokenizer.vocabSize, maxModelLen: 256, tokenizer: counting };
    const prompt = 'word '.repeat(800_000);
    const result = parseInputLine(JSON.stringify({ prompt }), 7, context);
    expect(result.isOk).toBe(false);
    expect(JSON.stringify(result)).toMatch(
      /line 7: prompt is too long: 4000000 bytes of text, more than the \d+ bytes/,
    );
    expect(numEncoded).toBe(0);
  });

  it('item 3: the byte bound never refuses a prompt that fits (checked at the bound)', () => {
    const context = { vocabSize: tokenizer.vocabSize, maxModelLen: 256, tokenizer };
    const fits = parseInputLine(JSON.stringify({ prompt: 'hello '.repeat(20) }), 1, context);
    expect(fits.isOk).toBe(true);
    // Longest entry of the vocabulary times maxModelLen: such text needs at least maxModelLen tokens,
    // so the token check (not the byte check) is what refuses it.
    const atBound = 'a'.repeat(256 * tokenizer.maxTokenBytes);
    expect(JSON.stringify(parseInputLine(JSON.stringify({ prompt: atBound }), 1, context))).toMatch(
      /tokens, but/,
    );
  });
});
