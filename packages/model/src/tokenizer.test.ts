import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  asciiMergeStrings,
  buildByteLevelBpeTokenizer,
  byteToUnicodeTable,
  MIN_BPE_VOCAB,
} from './byte-level-bpe.ts';
import { MODEL_SHAPES } from './model-shapes.ts';
import { Xoshiro128 } from './prng.ts';
import { SeesawTokenizer } from './tokenizer.ts';

const small = buildByteLevelBpeTokenizer(2048, 2048);
const large = buildByteLevelBpeTokenizer(32000, 2048);
const smallTok = SeesawTokenizer.fromObjects(small.tokenizerJson, small.tokenizerConfig);
const largeTok = SeesawTokenizer.fromObjects(large.tokenizerJson, large.tokenizerConfig);

function randomText(rng: Xoshiro128, length: number, unicode: boolean): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    if (!unicode || rng.nextFloat() < 0.6) s += String.fromCharCode(0x20 + Math.floor(rng.nextFloat() * 95));
    else {
      // Any code point outside the surrogate range: Latin-1, CJK, emoji, controls.
      let cp = Math.floor(rng.nextFloat() * 0x1ffff);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x4e00;
      s += String.fromCodePoint(cp);
    }
  }
  return s;
}

describe('byte-level BPE tokenizer.json', () => {
  it('has <unk> <s> </s>, the 256 byte symbols, then merges up to exactly vocabSize', () => {
    const model = large.tokenizerJson.model as {
      vocab: Record<string, number>;
      merges: Array<[string, string]>;
    };
    const ids = Object.values(model.vocab).sort((a, b) => a - b);
    expect(ids.length).toBe(32000);
    expect(ids.every((id, i) => id === i)).toBe(true);
    expect(model.vocab['<unk>']).toBe(0);
    expect(model.vocab['<s>']).toBe(1);
    expect(model.vocab['</s>']).toBe(2);
    const byteChar = byteToUnicodeTable();
    expect(new Set(byteChar).size).toBe(256);
    expect(model.vocab[byteChar[0x41]]).toBe(3 + 0x41);
    expect(byteChar[0x20]).toBe('Ġ');
    expect(model.merges.length).toBe(32000 - MIN_BPE_VOCAB);
    // Each merge joins two tokens that exist before it, into the next vocab entry.
    model.merges.forEach(([a, b], i) => {
      if (!(model.vocab[a] < MIN_BPE_VOCAB + i && model.vocab[b] < MIN_BPE_VOCAB + i))
        throw new Error(`merge ${i}`);
      if (model.vocab[a + b] !== MIN_BPE_VOCAB + i) throw new Error(`merge ${i} result`);
    });
  });

  it('is deterministic and its merge strings are printable ASCII with space only in front', () => {
    expect(JSON.stringify(buildByteLevelBpeTokenizer(2048, 2048))).toBe(JSON.stringify(small));
    const merges = asciiMergeStrings(5000);
    expect(new Set(merges).size).toBe(5000);
    for (const m of merges) {
      expect(m.length).toBeGreaterThanOrEqual(2);
      expect(/^[ -~][!-~]+$/.test(m)).toBe(true);
    }
    expect(merges.slice(0, 3)).toEqual([' e', ' t', 'ee']);
  });

  it('every id decodes to text', () => {
    for (const tok of [smallTok, largeTok]) {
      for (let id = 3; id < tok.vocabSize; id++) {
        const text = tok.decode([id]);
        if (text.length === 0) throw new Error(`id ${id} decodes to nothing`);
      }
    }
  });
});

describe('SeesawTokenizer', () => {
  it('prepends BOS and round-trips ASCII and UTF-8 text', () => {
    const texts = [
      'Hello, world!',
      'The quick brown fox jumps over the lazy dog.  Twice.\n\tIndented',
      'naïve café — 日本語のテキスト 😀👍🏽 Ελληνικά',
      ' leading and trailing spaces ',
      "it's 3.14 o'clock; don't 'quote' me",
      '',
    ];
    for (const tok of [smallTok, largeTok]) {
      for (const text of texts) {
        const ids = tok.encode(text);
        expect(ids[0]).toBe(1);
        expect(ids.slice(1)).toEqual(tok.encodeWithoutSpecialTokens(text));
        expect(tok.decode(ids)).toBe(text);
      }
    }
  });

  it('round-trips random ASCII and random Unicode strings', () => {
    const rng = new Xoshiro128(3);
    for (let i = 0; i < 200; i++) {
      const text = randomText(rng, 1 + Math.floor(rng.nextFloat() * 60), i % 2 === 1);
      const tok = i % 4 < 2 ? smallTok : largeTok;
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('merges shorten common text and decode drops special tokens', () => {
    const text = 'the tea is at the east gate';
    const bytes = new TextEncoder().encode(text).length;
    expect(largeTok.encodeWithoutSpecialTokens(text).length).toBeLessThan(bytes / 2);
    expect(smallTok.encodeWithoutSpecialTokens(text).length).toBeLessThan(bytes);
    const ids = smallTok.encode('ok');
    expect(smallTok.decode([...ids, 2])).toBe('ok');
    expect(smallTok.decode([])).toBe('');
  });

  it('load reads tokenizer.json + tokenizer_config.json, and gives null without tokenizer.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-tok-'));
    expect(SeesawTokenizer.load(dir)).toBeNull();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(small.tokenizerJson));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(small.tokenizerConfig));
    const tok = SeesawTokenizer.load(dir)!;
    expect(tok.vocabSize).toBe(2048);
    expect(tok.encode('round trip')).toEqual(smallTok.encode('round trip'));
  });

  it('refuses vocabularies too small for the byte symbols', () => {
    expect(() => buildByteLevelBpeTokenizer(200, 2048)).toThrow(/vocabSize >= 259/);
  });
});

describe('MODEL_SHAPES', () => {
  it('matches the briefed shapes', () => {
    expect(MODEL_SHAPES.tiny).toMatchObject({
      hidden: 256,
      layers: 4,
      heads: 8,
      kvHeads: 4,
      intermediate: 768,
      vocab: 2048,
    });
    expect(MODEL_SHAPES.small).toMatchObject({
      hidden: 768,
      layers: 12,
      heads: 12,
      kvHeads: 4,
      intermediate: 2048,
      vocab: 32000,
    });
    expect(MODEL_SHAPES.medium).toMatchObject({
      hidden: 2048,
      layers: 22,
      heads: 32,
      kvHeads: 4,
      intermediate: 5632,
      vocab: 32000,
    });
    for (const s of Object.values(MODEL_SHAPES)) expect(s.heads * s.headDim).toBe(s.hidden);
  });
});
