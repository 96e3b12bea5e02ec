import { describe, expect, it } from 'vitest';
import { type GgufValue, GgufValueType, gguf } from './gguf-format.ts';
import { GgufTokenType, ggufTokenizerFiles } from './gguf-tokenizer.ts';
import { SeesawTokenizer } from './tokenizer.ts';

/**
 * A small SentencePiece ("llama") vocabulary: <unk> <s> </s>, the 256 byte tokens <0xXX>, then
 * scored pieces. Scores deliberately disagree with piece length, so the merge order matters.
 */
const PIECES: Array<[string, number]> = [
  ['▁', -1],
  ['h', -2],
  ['e', -2],
  ['l', -2],
  ['o', -2],
  ['w', -2],
  ['r', -2],
  ['d', -2],
  ['ll', -3],
  ['he', -4],
  ['lo', -3.5],
  ['hell', -5],
  ['hello', -6],
  ['▁hello', -7],
  ['▁w', -8],
  ['or', -4.5],
  ['▁wor', -9],
  ['ld', -9.5],
  ['▁world', -10],
];

function spmVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types = [GgufTokenType.UNKNOWN, GgufTokenType.CONTROL, GgufTokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    types.push(GgufTokenType.BYTE);
  }
  for (const [piece, score] of PIECES) {
    tokens.push(piece);
    scores.push(score);
    types.push(GgufTokenType.NORMAL);
  }
  return { tokens, scores, types };
}

/**
 * llama.cpp's SPM algorithm, written out plainly: start from characters, repeatedly join the
 * adjacent pair whose concatenation is the best-scored normal token (leftmost on ties); symbols
 * left that are not tokens become their UTF-8 byte tokens.
 */
function spmReference(text: string, v: ReturnType<typeof spmVocabulary>): number[] {
  const id = new Map<string, number>();
  v.tokens.forEach((t, i) => {
    if (v.types[i] === GgufTokenType.NORMAL) id.set(t, i);
  });
  let symbols = [...`▁${text.replaceAll(' ', '▁')}`];
  for (;;) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const joined = id.get(symbols[i] + symbols[i + 1]);
      if (joined !== undefined && v.scores[joined] > bestScore) {
        best = i;
        bestScore = v.scores[joined];
      }
    }
    if (best < 0) break;
    symbols = [...symbols.slice(0, best), symbols[best] + symbols[best + 1], ...symbols.slice(best + 2)];
  }
  return symbols.flatMap((s) =>
    id.has(s) ? [id.get(s)!] : [...new TextEncoder().encode(s)].map((b) => 3 + b),
  );
}

function spmMetadata(v: ReturnType<typeof spmVocabulary>): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str('llama')],
    ['tokenizer.ggml.tokens', gguf.array(GgufValueType.STRING, v.tokens)],
    ['tokenizer.ggml.scores', gguf.array(GgufValueType.FLOAT32, v.scores)],
    ['tokenizer.ggml.token_type', gguf.array(GgufValueType.INT32, v.types)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
  ]);
}

describe('GGUF "llama" (SentencePiece) vocabulary', () => {
  const v = spmVocabulary();
  const files = ggufTokenizerFiles(spmMetadata(v), 'test.gguf')!;
  const tokenizer = SeesawTokenizer.fromObjects(files.tokenizerJson, files.tokenizerConfig);

  it.each(['hello world', 'hello', 'world hello', 'hell low', 'hé!', 'lo  ol'])(
    'encodes %j like the SPM algorithm, BOS first, and decodes back',
    (text) => {
      const ids = tokenizer.encode(text);
      expect(ids).toEqual([1, ...spmReference(text, v)]);
      expect(tokenizer.decode(ids)).toBe(text);
    },
  );

  it('uses the merged pieces (not only bytes) for known words', () => {
    expect(tokenizer.encode('hello world')).toEqual([
      1,
      v.tokens.indexOf('▁hello'),
      v.tokens.indexOf('▁world'),
    ]);
  });

  it('add_bos_token false drops the BOS', () => {
    const meta = spmMetadata(v);
    meta.set('tokenizer.ggml.add_bos_token', gguf.bool(false));
    const f = ggufTokenizerFiles(meta, 'test.gguf')!;
    expect(SeesawTokenizer.fromObjects(f.tokenizerJson, f.tokenizerConfig).encode('hello')[0]).toBe(
      v.tokens.indexOf('▁hello'),
    );
  });

  it('rejects unknown tokenizer models by name', () => {
    const meta = spmMetadata(v);
    meta.set('tokenizer.ggml.model', gguf.str('bert'));
    expect(() => ggufTokenizerFiles(meta, 'test.gguf')).toThrow(
      /metadata "tokenizer.ggml.model" "bert" is not supported \(supported: llama, gpt2\)/,
    );
  });
});
