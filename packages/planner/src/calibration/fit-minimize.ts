/**
 * Minimises a loss over positive parameters by pattern search in log space: each round tries
 * every parameter, and every pair of parameters together, times and divided by a step, keeps
 * improvements, and halves the step when no move helps. The pair moves follow the ridges of a
 * roofline (a launch cost traded against a rate), where one-parameter moves stall. Enough for
 * the 2-5 parameter cost-model fits; deterministic, no dependencies.
 */
export function minimizePositive(
  start: readonly number[],
  loss: (params: readonly number[]) => number,
  options: {
    initialLogStep?: number;
    minLogStep?: number;
    maxRounds?: number;
    /**
     * Per-parameter floors. A parameter the loss hardly feels (a 10 us launch beside a 100 us
     * transfer) can drift towards 0 early on, and from 1e-20 no step brings it back.
     */
    lowerBounds?: readonly number[];
  } = {},
): number[] {
  const params = [...start];
  const floor = (i: number, value: number) => Math.max(value, options.lowerBounds?.[i] ?? 0);
  let best = loss(params);
  let logStep = options.initialLogStep ?? Math.log(4);
  const minLogStep = options.minLogStep ?? 1e-4;
  const maxRounds = options.maxRounds ?? 2000;
  for (let round = 0; round < maxRounds && logStep > minLogStep; round++) {
    let improved = false;
    const tryMove = (moves: readonly [number, number][]) => {
      const trial = [...params];
      for (const [i, direction] of moves) trial[i] = floor(i, params[i] * Math.exp(direction * logStep));
      if (moves.every(([i]) => trial[i] === params[i])) return;
      const value = loss(trial);
      if (value < best) {
        best = value;
        for (const [i] of moves) params[i] = trial[i];
        improved = true;
      }
    };
    for (let i = 0; i < params.length; i++) for (const direction of [1, -1]) tryMove([[i, direction]]);
    for (let i = 0; i < params.length; i++)
      for (let j = i + 1; j < params.length; j++)
        for (const di of [1, -1])
          for (const dj of [1, -1])
            tryMove([
              [i, di],
              [j, dj],
            ]);
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
