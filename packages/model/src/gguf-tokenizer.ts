import type { TokenizerFiles } from './byte-level-bpe.ts';
import { type GgufValue, GgufValueType, gguf } from './gguf-format.ts';
import { GgufMetadataReader } from './gguf-llama-config.ts';
import { ModelConfigError } from './model-config.ts';

/** llama.cpp's token types (tokenizer.ggml.token_type). */
export enum GgufTokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/** SentencePiece's word-boundary mark. */
const SPACE_MARK = '\u2581';

/** Llama-3's pre-tokenizer split (Hugging Face tokenizer.json of Meta-Llama-3; llama.cpp "llama-bpe"). */
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** BPE pre-tokenizers by tokenizer.ggml.pre: GPT-2's byte-level split, or Llama-3's. */
const BPE_PRE_TOKENIZERS: Record<string, object> = {
  default: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  'gpt-2': { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  'llama-bpe': {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  },
};

interface Vocabulary {
  tokens: string[];
  types: number[];
  bos: number | undefined;
  eos: number | undefined;
  unk: number | undefined;
  addBos: boolean;
  addEos: boolean;
}

function addedTokens(vocab: Vocabulary): object[] {
  const added: object[] = [];
  vocab.types.forEach((type, id) => {
    if (
      type === GgufTokenType.CONTROL ||
      type === GgufTokenType.USER_DEFINED ||
      type === GgufTokenType.UNKNOWN
    ) {
      added.push({
        id,
        content: vocab.tokens[id],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: type !== GgufTokenType.USER_DEFINED,
      });
    }
  });
  return added;
}

/** BOS / EOS around every sequence, as add_bos_token / add_eos_token say. */
function postProcessor(vocab: Vocabulary): object | null {
  const bos = vocab.addBos && vocab.bos !== undefined ? vocab.tokens[vocab.bos] : null;
  const eos = vocab.addEos && vocab.eos !== undefined ? vocab.tokens[vocab.eos] : null;
  if (bos === null && eos === null) return null;
  const single: object[] = [];
  const specials: Record<string, object> = {};
  if (bos !== null) {
    single.push({ SpecialToken: { id: bos, type_id: 0 } });
    specials[bos] = { id: bos, ids: [vocab.bos], tokens: [bos] };
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (eos !== null) {
    single.push({ SpecialToken: { id: eos, type_id: 0 } });
    specials[eos] = { id: eos, ids: [vocab.eos], tokens: [eos] };
  }
  return { type: 'TemplateProcessing', single, pair: [...single], special_tokens: specials };
}

/**
 * SentencePiece BPE merges from a scored vocabulary: every split of a token into two tokens is a
 * merge, ranked by the merged token's score (highest first). BPE with these merges makes the same
 * choice as llama.cpp's SPM tokenizer, which repeatedly joins the adjacent pair whose
 * concatenation is the best-scored token.
 */
export function sentencePieceMerges(
  tokens: string[],
  scores: number[],
  types: number[],
): Array<[string, string]> {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === GgufTokenType.NORMAL && !ids.has(t)) ids.set(t, i);
  });
  const merges: Array<{ left: string; right: string; score: number; id: number; leftId: number }> = [];
  for (const [token, id] of ids) {
    const chars = [...token];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const leftId = ids.get(left);
      if (leftId !== undefined && ids.has(right)) merges.push({ left, right, score: scores[id], id, leftId });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.leftId - b.leftId);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * The tokenizer stored in a GGUF file as Hugging Face tokenizer.json / tokenizer_config.json
 * objects (for SeesawTokenizer): "llama" (SentencePiece: scored pieces, byte fallback, "▁" for
 * spaces) or "gpt2" (byte-level BPE with merges). null when the file has no vocabulary.
 */
export function ggufTokenizerFiles(
  metadata: ReadonlyMap<string, GgufValue>,
  source: string,
): TokenizerFiles | null {
  const meta: GgufMetadataReader = new GgufMetadataReader(metadata, source);
  const model = meta.string('tokenizer.ggml.model');
  if (model === undefined || model === 'no_vocab' || model === 'none') return null;
  const tokens = meta.array<string>('tokenizer.ggml.tokens', 'string');
  if (tokens === undefined) meta.fail('tokenizer.ggml.tokens', 'is missing');
  const types =
    meta.array<number>('tokenizer.ggml.token_type', 'number') ?? tokens.map(() => GgufTokenType.NORMAL);
  if (types.length !== tokens.length)
    meta.fail('tokenizer.ggml.token_type', 'has a different length than the tokens');
  const tokenId = (key: string) => {
    const id = meta.number(key);
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < tokens.length)) {
      meta.fail(key, `token id ${id} is outside the vocabulary of ${tokens.length}`);
    }
    return id;
  };
  const vocab: Vocabulary = {
    tokens,
    types,
    bos: tokenId('tokenizer.ggml.bos_token_id'),
    eos: tokenId('tokenizer.ggml.eos_token_id'),
    unk: tokenId('tokenizer.ggml.unknown_token_id'),
    addBos: meta.boolean('tokenizer.ggml.add_bos_token') ?? model === 'llama',
    addEos: meta.boolean('tokenizer.ggml.add_eos_token') ?? false,
  };
  const vocabObject: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!Object.hasOwn(vocabObject, t)) vocabObject[t] = i;
  });
  const bpe = {
    type: 'BPE',
    dropout: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    ignore_merges: false,
    vocab: vocabObject,
  };
  const tokenizerConfig = {
    add_bos_token: vocab.addBos,
    add_eos_token: vocab.addEos,
    clean_up_tokenization_spaces: false,
    ...(vocab.bos !== undefined ? { bos_token: tokens[vocab.bos] } : {}),
    ...(vocab.eos !== undefined ? { eos_token: tokens[vocab.eos] } : {}),
  };
  const common = { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens(vocab) };
  if (model === 'llama') {
    const scores = meta.array<number>('tokenizer.ggml.scores', 'number');
    if (scores === undefined || scores.length !== tokens.length) {
      meta.fail('tokenizer.ggml.scores', 'is missing or has a different length than the tokens');
    }
    const addSpacePrefix = meta.boolean('tokenizer.ggml.add_space_prefix') ?? true;
    const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: SPACE_MARK };
    return {
      tokenizerJson: {
        ...common,
        normalizer: addSpacePrefix
          ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPACE_MARK }, replaceSpaces] }
          : replaceSpaces,
        pre_tokenizer: null,
        post_processor: postProcessor(vocab),
        decoder: {
          type: 'Sequence',
          decoders: [
            { type: 'Replace', pattern: { String: SPACE_MARK }, content: ' ' },
            { type: 'ByteFallback' },
            { type: 'Fuse' },
            ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
          ],
        },
        model: {
          ...bpe,
          unk_token: vocab.unk !== undefined ? tokens[vocab.unk] : null,
          fuse_unk: true,
          byte_fallback: true,
          merges: sentencePieceMerges(tokens, scores, types),
        },
      },
      tokenizerConfig,
    };
  }
  if (model === 'gpt2') {
    const merges = meta.array<string>('tokenizer.ggml.merges', 'string');
    if (merges === undefined)
      meta.fail('tokenizer.ggml.merges', 'is missing (a gpt2 vocabulary needs merges)');
    const pre = meta.string('tokenizer.ggml.pre') ?? 'default';
    const preTokenizer = BPE_PRE_TOKENIZERS[pre];
    if (preTokenizer === undefined) {
      meta.fail(
        'tokenizer.ggml.pre',
        `"${pre}" is not supported (supported: ${Object.keys(BPE_PRE_TOKENIZERS).join(', ')})`,
      );
    }
    return {
      tokenizerJson: {
        ...common,
        normalizer: null,
        pre_tokenizer: preTokenizer,
        post_processor: postProcessor(vocab),
        decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        model: {
          ...bpe,
          unk_token: null,
          fuse_unk: false,
          byte_fallback: false,
          merges: merges.map((m) => {
            const space = m.indexOf(' ');
            if (space <= 0)
              meta.fail('tokenizer.ggml.merges', `entry ${JSON.stringify(m)} is not "left right"`);
            return [m.slice(0, space), m.slice(space + 1)];
          }),
        },
      },
      tokenizerConfig,
    };
  }
  meta.fail('tokenizer.ggml.model', `"${model}" is not supported (supported: llama, gpt2)`);
}

/**
 * GGUF tokenizer metadata (model "gpt2") for a Hugging Face byte-level BPE tokenizer.json, as
 * llama.cpp's converter writes it: tokens by id, token types, "left right" merges, special ids.
 */
export function byteLevelBpeMetadata(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  vocabSize: number,
  source: string,
): Map<string, GgufValue> {
  const fail: (problem: string) => never = (problem) => {
    throw new ModelConfigError(`${source}: ${problem}`);
  };
  const model = tokenizerJson.model as Record<string, unknown> | undefined;
  const pre = tokenizerJson.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (model?.type !== 'BPE' || pre?.type !== 'ByteLevel' || model.byte_fallback === true) {
    fail('only byte-level BPE tokenizers (model BPE, pre_tokenizer ByteLevel) can be written to GGUF yet');
  }
  const vocab = model.vocab as Record<string, number>;
  const tokens = new Array<string>(vocabSize);
  const types = new Array<number>(vocabSize).fill(GgufTokenType.NORMAL);
  for (const [token, id] of Object.entries(vocab)) if (id < vocabSize) tokens[id] = token;
  for (const added of (tokenizerJson.added_tokens as Array<Record<string, unknown>> | undefined) ?? []) {
    const id = added.id as number;
    if (id >= vocabSize) continue;
    tokens[id] = added.content as string;
    types[id] = added.special === true ? GgufTokenType.CONTROL : GgufTokenType.USER_DEFINED;
  }
  for (let i = 0; i < vocabSize; i++) {
    // Ids the tokenizer never produces still need a name in the GGUF vocabulary.
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = GgufTokenType.UNUSED;
    }
  }
  const merges = ((model.merges as Array<string | [string, string]>) ?? []).map((m) =>
    typeof m === 'string' ? m : `${m[0]} ${m[1]}`,
  );
  const idOf = (field: string): number | undefined => {
    const value = tokenizerConfig[field];
    const content = typeof value === 'string' ? value : (value as { content?: string } | undefined)?.content;
    if (content === undefined) return undefined;
    const id = tokens.indexOf(content);
    return id >= 0 ? id : undefined;
  };
  const m = new Map<string, GgufValue>();
  m.set('tokenizer.ggml.model', gguf.str('gpt2'));
  m.set('tokenizer.ggml.pre', gguf.str('default'));
  m.set('tokenizer.ggml.tokens', gguf.array(GgufValueType.STRING, tokens));
  m.set('tokenizer.ggml.token_type', gguf.array(GgufValueType.INT32, types));
  m.set('tokenizer.ggml.merges', gguf.array(GgufValueType.STRING, merges));
  for (const [key, field] of [
    ['bos', 'bos_token'],
    ['eos', 'eos_token'],
    ['unknown', 'unk_token'],
  ]) {
    const id = idOf(field);
    if (id !== undefined) m.set(`tokenizer.ggml.${key}_token_id`, gguf.u32(id));
  }
  m.set('tokenizer.ggml.add_bos_token', gguf.bool(tokenizerConfig.add_bos_token === true));
  m.set('tokenizer.ggml.add_eos_token', gguf.bool(tokenizerConfig.add_eos_token === true));
  return m;
}
