import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { GgufFile } from './gguf-reader.ts';
import { isGgufPath } from './gguf-tensors.ts';
import { ggufTokenizerFiles } from './gguf-tokenizer.ts';

/**
 * A Hugging Face tokenizer.json (+ optional tokenizer_config.json) through
 * @huggingface/tokenizers.
 * - encode adds the special tokens the tokenizer.json post-processor asks for: for Llama
 *   tokenizers and our generated ones that is a leading BOS (<s>), no EOS.
 * - decode drops special tokens (BOS/EOS/...) so generated text reads cleanly, and does no
 *   space clean-up unless tokenizer_config.json asks for it.
 */
export class SeesawTokenizer {
  readonly vocabSize: number;
  /**
   * UTF-8 bytes of the longest vocabulary entry: no token stands for more input than this (up
   * to normalization), so callers can bound a prompt by bytes before tokenizing it.
   */
  readonly maxTokenBytes: number;

  private constructor(private readonly tokenizer: Tokenizer) {
    let maxId = -1;
    let maxBytes = 1;
    for (const [text, id] of tokenizer.get_vocab(true)) {
      maxId = Math.max(maxId, id);
      maxBytes = Math.max(maxBytes, Buffer.byteLength(text, 'utf8'));
    }
    this.vocabSize = maxId + 1;
    this.maxTokenBytes = maxBytes;
  }

  /**
   * The tokenizer of a Hugging Face directory (tokenizer.json) or of a GGUF file (its vocabulary
   * metadata); null when there is none (the engine then works on token ids only).
   */
  static load(dir: string): SeesawTokenizer | null {
    if (isGgufPath(dir)) return SeesawTokenizer.loadGguf(dir);
    const jsonPath = join(dir, 'tokenizer.json');
    if (!existsSync(jsonPath)) return null;
    const configPath = join(dir, 'tokenizer_config.json');
    const tokenizerJson = JSON.parse(readFileSync(jsonPath, 'utf8'));
    const tokenizerConfig = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
    return SeesawTokenizer.fromObjects(tokenizerJson, tokenizerConfig);
  }

  private static loadGguf(path: string): SeesawTokenizer | null {
    const file = GgufFile.open(path);
    try {
      const files = ggufTokenizerFiles(file.metadata, path);
      return files === null ? null : SeesawTokenizer.fromObjects(files.tokenizerJson, files.tokenizerConfig);
    } finally {
      file.close();
    }
  }

  static fromObjects(tokenizerJson: object, tokenizerConfig: object): SeesawTokenizer {
    return new SeesawTokenizer(new Tokenizer(tokenizerJson, tokenizerConfig));
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  /** Token ids without any special tokens (no BOS). */
  encodeWithoutSpecialTokens(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids, { skip_special_tokens: true });
  }
}
