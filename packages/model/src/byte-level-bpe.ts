/**
 * Builds a deterministic byte-level BPE tokenizer (Hugging Face tokenizer.json layout) for
 * generated checkpoints. Ids: <unk>=0 <s>=1 </s>=2, then the 256 byte symbols in byte order
 * (id 3 + byte), then merged tokens until vocabSize. Every id decodes to text.
 */

export const UNK_TOKEN = '<unk>';
export const BOS_TOKEN = '<s>';
export const EOS_TOKEN = '</s>';
const SPECIAL_TOKENS = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN];
export const FIRST_BYTE_ID = SPECIAL_TOKENS.length;
export const MIN_BPE_VOCAB = FIRST_BYTE_ID + 256;

/**
 * GPT-2 byte-to-unicode table: printable Latin-1 bytes stand for themselves, the other 68
 * bytes map to U+0100.. in byte order, so every byte is one visible character.
 */
export function byteToUnicodeTable(): string[] {
  const table = new Array<string>(256);
  const isPrintable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(isPrintable(b) ? b : next++);
  return table;
}

/** Printable ASCII ordered roughly by English frequency; earlier characters get cheaper merges. */
function printableAsciiByFrequency(): string[] {
  const preferred = ' etaoinsrhldcumfpgwybvkxjqzETAOINSRHLDCUMFPGWYBVKXJQZ0123456789.,\'"-';
  const chars = [...preferred];
  for (let c = 0x20; c <= 0x7e; c++) {
    const ch = String.fromCharCode(c);
    if (!chars.includes(ch)) chars.push(ch);
  }
  return chars;
}

/** Min-heap of candidate strings keyed by (score, string). */
class CandidateHeap {
  private readonly items: Array<{ text: string; score: number }> = [];

  get size(): number {
    return this.items.length;
  }

  push(text: string, score: number): void {
    const items = this.items;
    items.push({ text, score });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): { text: string; score: number } {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < items.length && this.less(items[l], items[smallest])) smallest = l;
        if (r < items.length && this.less(items[r], items[smallest])) smallest = r;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest], items[i]];
        i = smallest;
      }
    }
    return top;
  }

  private less(a: { text: string; score: number }, b: { text: string; score: number }): boolean {
    return a.score < b.score || (a.score === b.score && a.text < b.text);
  }
}

/**
 * The first `count` merge strings (ASCII, length >= 2) in order of increasing cost, where a
 * string costs the sum of its characters' frequency ranks (+1). A space may only lead, as the
 * ByteLevel pre-tokenizer only ever puts it at the start of a word. Each string's prefix
 * costs less, so it is merged earlier and BPE can always build the longer token.
 * Enumeration: every string has a first child (append the cheapest non-space char) and a
 * next sibling (replace its last char with the next one in rank order); both cost at least
 * as much, so popping a heap in cost order visits each string exactly once.
 */
export function asciiMergeStrings(count: number): string[] {
  const anyPosition = printableAsciiByFrequency();
  const later = anyPosition.filter((c) => c !== ' ');
  const weight = new Map<string, number>(anyPosition.map((c, i) => [c, i + 1]));
  const rankIn = (alphabet: string[]) => new Map(alphabet.map((c, i) => [c, i]));
  const firstRank = rankIn(anyPosition);
  const laterRank = rankIn(later);
  const heap = new CandidateHeap();
  heap.push(anyPosition[0], weight.get(anyPosition[0])!);
  const result: string[] = [];
  while (result.length < count && heap.size > 0) {
    const { text, score } = heap.pop();
    if (text.length >= 2) result.push(text);
    heap.push(text + later[0], score + weight.get(later[0])!);
    const last = text[text.length - 1];
    const alphabet = text.length === 1 ? anyPosition : later;
    const nextChar = alphabet[(text.length === 1 ? firstRank : laterRank).get(last)! + 1];
    if (nextChar !== undefined)
      heap.push(text.slice(0, -1) + nextChar, score - weight.get(last)! + weight.get(nextChar)!);
  }
  return result;
}

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** tokenizer.json + tokenizer_config.json objects for a byte-level BPE with exactly vocabSize ids. */
export function buildByteLevelBpeTokenizer(vocabSize: number, modelMaxLength: number): TokenizerFiles {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_BPE_VOCAB) {
    throw new Error(`byte-level BPE needs vocabSize >= ${MIN_BPE_VOCAB}, got ${vocabSize}`);
  }
  const byteChar = byteToUnicodeTable();
  const encodeAscii = (s: string) => [...s].map((c) => byteChar[c.charCodeAt(0)]).join('');
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  byteChar.forEach((c, b) => {
    vocab[c] = FIRST_BYTE_ID + b;
  });
  const merges: Array<[string, string]> = [];
  for (const s of asciiMergeStrings(vocabSize - MIN_BPE_VOCAB)) {
    vocab[encodeAscii(s)] = MIN_BPE_VOCAB + merges.length;
    merges.push([encodeAscii(s.slice(0, -1)), encodeAscii(s.slice(-1))]);
  }
  const addedTokens = SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    // Llama-style: BOS before every sequence, no EOS.
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: BOS_TOKEN, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: BOS_TOKEN, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [BOS_TOKEN]: { id: BOS_TOKEN, ids: [1], tokens: [BOS_TOKEN] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: UNK_TOKEN,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: BOS_TOKEN,
    eos_token: EOS_TOKEN,
    unk_token: UNK_TOKEN,
    // Keep decode(encode(text)) === text: no " ." -> "." style clean-up.
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}
