/**
 * Log probabilities of a sampled position for requests that ask for them: log-softmax of the
 * raw logits row (before penalties, temperature and the top-k/top-p cut; vLLM's default
 * `raw_logprobs`), for the chosen token and the most likely few. Summed in float64 so the values
 * do not depend on the row's float32 rounding beyond the logits themselves.
 */
import type { SampledLogprobs, TokenLogprob } from '@seesaw/protocol';

/** The most tokens a request may ask alternatives for (OpenAI's top_logprobs limit). */
export const MAX_NUM_LOGPROBS = 20;

export function sampledLogprobs(row: Float32Array, chosenTokenId: number, numTop: number): SampledLogprobs {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const logNormalizer = max + Math.log(sum);
  const top = topTokens(row, numTop).map(
    (tokenId): TokenLogprob => ({ tokenId, logprob: row[tokenId] - logNormalizer }),
  );
  return { logprob: row[chosenTokenId] - logNormalizer, top };
}

/** The k largest entries' ids, largest first, lower id first on ties (k is small: insertion). */
function topTokens(row: Float32Array, k: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < row.length && k > 0; i++) {
    if (ids.length === k && !(row[i] > row[ids[k - 1]])) continue;
    let at = Math.min(ids.length, k - 1);
    if (ids.length < k) ids.push(i);
    while (at > 0 && row[i] > row[ids[at - 1]]) {
      ids[at] = ids[at - 1];
      at--;
    }
    ids[at] = i;
  }
  return ids;
}
