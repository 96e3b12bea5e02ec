import { minimizePositive } from './fit-minimize.ts';

/**
 * Two cost regimes split by working-set size. Measured GPU kernels and collectives change
 * behaviour past a size: a norm or a small weight matrix that fits in L2 streams faster than
 * one that spills to HBM, cuBLAS and NCCL switch kernels or protocols (NCCL's eager/LL path for
 * small messages, rendezvous beyond), and a cross-host send through a host bridge drops from
 * ~9 GB/s to ~2.5 GB/s past a few MB. One set of rates per side, and the split itself, are
 * fitted to all the rows of a group; nothing is fitted per row.
 */
export interface SizeRegimes<R> {
  /** Rates for working sets below `largeFromBytes`. */
  small: R;
  /** Rates from `largeFromBytes` up. */
  large: R;
  /** The split, bytes; Number.MAX_VALUE (JSON keeps it) when one regime fits best. */
  largeFromBytes: number;
}

export function regimeFor<R>(regimes: SizeRegimes<R>, bytes: number): R {
  return bytes < regimes.largeFromBytes ? regimes.small : regimes.large;
}

/** Mean |log(predicted / measured)|: a 2 us kernel weighs like a 20 ms one. */
export function logErrorLoss(pairs: Iterable<[number, number]>): number {
  let sum = 0;
  let count = 0;
  for (const [predicted, measured] of pairs) {
    sum += Math.abs(Math.log(predicted / measured));
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

export interface RegimeFitOptions<T> {
  /** The working-set size of one row, bytes. */
  sizeOf: (row: T) => number;
  /** The measured seconds of one row. */
  secondsOf: (row: T) => number;
  /** Predicted seconds of one row under the positive parameters `params`. */
  predict: (params: readonly number[], row: T) => number;
  /** Starting parameters of the coordinate search. */
  start: readonly number[];
  /** Floors of the parameters (see minimizePositive). */
  lowerBounds?: readonly number[];
  /** Candidate splits tried: this many size quantiles (plus "no split"). */
  candidateSplits?: number;
  /** Fewest rows a side may have (a side fitted to three rows would chase noise). */
  minRowsPerSide?: number;
}

/**
 * Fits `predict`'s parameters to each side of every candidate split (size quantiles of the rows)
 * and keeps the split with the lowest total log error. Returns the parameter vectors.
 */
export function fitSizeRegimes<T>(rows: readonly T[], options: RegimeFitOptions<T>): SizeRegimes<number[]> {
  const { sizeOf, secondsOf, predict, start } = options;
  const candidates = options.candidateSplits ?? 16;
  const minRows = options.minRowsPerSide ?? Math.max(8, Math.ceil(rows.length / 50));
  const fitSide = (side: readonly T[]): { params: number[]; loss: number } => {
    if (side.length === 0) return { params: [...start], loss: 0 };
    const lossOf = (params: readonly number[]) =>
      logErrorLoss(side.map((row) => [predict(params, row), secondsOf(row)]));
    const params = minimizePositive(start, lossOf, { minLogStep: 1e-3, lowerBounds: options.lowerBounds });
    return { params, loss: lossOf(params) * side.length };
  };
  const whole = fitSide(rows);
  let best: SizeRegimes<number[]> & { loss: number } = {
    small: whole.params,
    large: whole.params,
    largeFromBytes: Number.MAX_VALUE,
    loss: whole.loss,
  };
  const sizes = [...new Set(rows.map(sizeOf))].sort((a, b) => a - b);
  const tried = new Set<number>();
  for (let q = 1; q < candidates; q++) {
    const split = sizes[Math.floor((q * sizes.length) / candidates)];
    if (split === undefined || tried.has(split)) continue;
    tried.add(split);
    const below = rows.filter((row) => sizeOf(row) < split);
    const above = rows.filter((row) => sizeOf(row) >= split);
    if (below.length < minRows || above.length < minRows) continue;
    const small = fitSide(below);
    const large = fitSide(above);
    // A split must pay for its extra parameters: keep it only when it cuts the loss by 1%.
    const loss = small.loss + large.loss;
    if (loss < whole.loss * 0.99 && loss < best.loss)
      best = { small: small.params, large: large.params, largeFromBytes: split, loss };
  }
  return { small: best.small, large: best.large, largeFromBytes: best.largeFromBytes };
}
