/**
 * Log probabilities in OpenAI's response shapes, from the engine's per-output SampledLogprobs.
 * A token's text is its own decode (so a token holding part of a UTF-8 character reads as the
 * replacement character, and `bytes` are that text's UTF-8); without a tokenizer it is
 * `token_id:N`, as vLLM writes ids. A log probability of -Infinity (a token the raw logits rule
 * out) is written as -9999, as vLLM does, since JSON has no infinities.
 */
import type { SampledLogprobs } from '@seesaw/protocol';

/** completions: parallel lists per output token. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per position: the requested most likely tokens and their log probabilities. */
  top_logprobs: Array<Record<string, number>>;
  /** Each token's start in the choice's text (after an echoed prompt). */
  text_offset: number[];
}

interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** chat: one entry per output token. */
export interface ChatLogprobs {
  content: Array<ChatTopLogprob & { top_logprobs: ChatTopLogprob[] }>;
}

/** The text a token stands for in these records. */
export type TokenText = (tokenId: number) => string;

export function tokenTextOf(decode: ((ids: number[]) => string) | null): TokenText {
  return decode === null ? (tokenId) => `token_id:${tokenId}` : (tokenId) => decode([tokenId]);
}

function finiteLogprob(logprob: number): number {
  return logprob === Number.NEGATIVE_INFINITY ? -9999 : logprob;
}

function checkLengths(tokenIds: readonly number[], logprobs: readonly SampledLogprobs[]): void {
  if (logprobs.length < tokenIds.length) {
    throw new Error(`${logprobs.length} log probability entries for ${tokenIds.length} output tokens`);
  }
}

export function completionLogprobs(
  tokenIds: readonly number[],
  logprobs: readonly SampledLogprobs[],
  tokenText: TokenText,
  firstOffset = 0,
): CompletionLogprobs {
  checkLengths(tokenIds, logprobs);
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = firstOffset;
  tokenIds.forEach((tokenId, i) => {
    const token = tokenText(tokenId);
    result.tokens.push(token);
    result.token_logprobs.push(finiteLogprob(logprobs[i].logprob));
    result.top_logprobs.push(
      Object.fromEntries(logprobs[i].top.map((top) => [tokenText(top.tokenId), finiteLogprob(top.logprob)])),
    );
    result.text_offset.push(offset);
    offset += token.length;
  });
  return result;
}

function chatEntry(tokenId: number, logprob: number, tokenText: TokenText): ChatTopLogprob {
  const token = tokenText(tokenId);
  return { token, logprob: finiteLogprob(logprob), bytes: [...Buffer.from(token, 'utf8')] };
}

export function chatLogprobs(
  tokenIds: readonly number[],
  logprobs: readonly SampledLogprobs[],
  tokenText: TokenText,
): ChatLogprobs {
  checkLengths(tokenIds, logprobs);
  return {
    content: tokenIds.map((tokenId, i) => ({
      ...chatEntry(tokenId, logprobs[i].logprob, tokenText),
      top_logprobs: logprobs[i].top.map((top) => chatEntry(top.tokenId, top.logprob, tokenText)),
    })),
  };
}
