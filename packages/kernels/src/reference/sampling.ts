// Float64 oracle for token selection: greedy argmax and the temperature / top-k / top-p
// sampler, expressed as an explicit candidate list with probabilities.

/** Index of the max of each row (first on ties), NaN never chosen (0 for a row of NaN only). */
export function argmaxRows(logits: ArrayLike<number>, rows: number, n: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -1;
    for (let i = 0; i < n; i++) {
      const value = logits[r * n + i];
      if (!Number.isNaN(value) && (best < 0 || value > logits[r * n + best])) best = i;
    }
    out[r] = Math.max(best, 0);
  }
  return out;
}

export interface SamplingCandidates {
  /** Token ids in descending probability (ties by lower id), after top-k and top-p. */
  tokens: number[];
  /** Their probabilities, renormalised to sum to 1. */
  probs: number[];
}

/** The candidates sampleRow draws from: logits / temperature, top-k (k <= 0 off), softmax over
 *  the kept tokens, then the shortest prefix whose probability reaches topP (>= 1: off). */
export function samplingCandidates(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  topP: number,
): SamplingCandidates {
  const ids = Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => (logits[b] > logits[a] ? 1 : logits[b] < logits[a] ? -1 : a - b));
  const kept = topK > 0 ? ids.slice(0, Math.min(topK, ids.length)) : ids;
  const top = logits[kept[0]];
  const weights = kept.map((id) => Math.exp((logits[id] - top) / temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  let count = kept.length;
  if (topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < kept.length; i++) {
      cumulative += weights[i];
      if (cumulative >= topP * total) {
        count = i + 1;
        break;
      }
    }
    total = weights.slice(0, count).reduce((a, b) => a + b, 0);
  }
  return { tokens: kept.slice(0, count), probs: weights.slice(0, count).map((w) => w / total) };
}

/** First candidate whose cumulative probability exceeds uniform (in [0, 1)). */
export function sampleRow(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  topP: number,
  uniform: number,
): number {
  const { tokens, probs } = samplingCandidates(logits, temperature, topK, topP);
  let cumulative = 0;
  for (let i = 0; i < tokens.length; i++) {
    cumulative += probs[i];
    if (cumulative > uniform) return tokens[i];
  }
  return tokens[tokens.length - 1];
}
