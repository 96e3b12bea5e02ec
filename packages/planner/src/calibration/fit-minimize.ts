/**
 * Minimises a loss over positive parameters by coordinate search in log space: each round tries
 * every parameter times and divided by a step, keeps improvements, and halves the step when no
 * move helps. Enough for the 2-5 parameter cost-model fits; deterministic, no dependencies.
 */
export function minimizePositive(
  start: readonly number[],
  loss: (params: readonly number[]) => number,
  options: { initialLogStep?: number; minLogStep?: number; maxRounds?: number } = {},
): number[] {
  const params = [...start];
  let best = loss(params);
  let logStep = options.initialLogStep ?? Math.log(4);
  const minLogStep = options.minLogStep ?? 1e-4;
  const maxRounds = options.maxRounds ?? 2000;
  for (let round = 0; round < maxRounds && logStep > minLogStep; round++) {
    let improved = false;
    for (let i = 0; i < params.length; i++) {
      for (const direction of [1, -1]) {
        const trial = [...params];
        trial[i] = params[i] * Math.exp(direction * logStep);
        const value = loss(trial);
        if (value < best) {
          best = value;
          params[i] = trial[i];
          improved = true;
        }
      }
    }
    if (!improved) logStep /= 2;
  }
  return params;
}

/** |predicted - measured| / measured. */
export function relativeError(predicted: number, measured: number): number {
  return Math.abs(predicted - measured) / measured;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
