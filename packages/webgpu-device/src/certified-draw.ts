/**
 * The CPU sampler's draw (kernels sampleRow) over a whole row, made from the row's head alone:
 * its k best logits in the sampler's order plus the GPU's f32 sum of the weight outside them.
 *
 * sampleRow walks the sorted candidates adding float64 weights exp((z - top) / T) until the
 * cumulative passes uniform x total (total: the sum over all candidates, or the top-p prefix's).
 * The host recomputes the head's weights exactly as the CPU would (up to exp's last bit) but
 * knows the tail's sum only within bounds, so it runs the walk at both ends of every interval
 * and answers only when they pick the same token: then the CPU, whose values lie inside the
 * intervals, picks it too. Otherwise (a draw landing near a boundary or in the tail) it answers
 * null and the caller draws from the whole logits row, so tokens always equal the CPU engine's.
 */

/** Relative slack on every float64 sum: exp's last bit and summation order, for rows up to 2^30 entries. */
const FLOAT64_SLACK = 1e-9;

export interface RowHead {
  /** The row's first values in the sampler's order (descending, ties by lower id, NaN as -inf). */
  values: Float32Array;
  ids: Int32Array;
  /** The GPU's f32 sum of exp((z - top) / T) over the entries after the head (tailWeights). */
  tailWeight: number;
  /** Length of the whole row. */
  rowLength: number;
}

/** Bounds on the CPU's float64 tail sum from the GPU's f32 one (see the error budget below). */
export function tailWeightBounds(tailWeight: number, rowLength: number): { low: number; high: number } {
  // Per term: WGSL's exp is within 3 + 2|x| ulp (|x| < 88 where the weight is not 0 in f32), the
  // f32 subtraction and scaling within 2 ulp of x: under 5e-5 relative. The 64-lane sum adds at
  // most (n / 64 + 6) roundings. 1e-3 on top covers drivers that are looser than the spec; the
  // absolute term covers weights that underflow in f32 but not in float64 (each < 2^-120).
  const relative = 1e-3 + (rowLength / 64 + 8) * 2 ** -22;
  const absolute = rowLength * 2 ** -120;
  return {
    low: Math.max(0, tailWeight * (1 - relative) - absolute),
    high: tailWeight * (1 + relative) + absolute,
  };
}

/**
 * The id sampleRow(row, temperature, topK, topP, uniform) returns for the whole row, or null when
 * the head cannot decide it. Needs temperature > 0 and a head shorter than the candidate list
 * (with the whole list in the head, sampleRow over the head itself is exact).
 */
export function drawFromHead(
  head: RowHead,
  temperature: number,
  topK: number,
  topP: number,
  uniform: number,
): number | null {
  const { values, ids } = head;
  const top = values[0];
  if (!Number.isFinite(top)) return ids[0];
  const limit = topK > 0 ? Math.min(topK, head.rowLength) : head.rowLength;
  const headLength = Math.min(values.length, limit);
  const cumulative = new Float64Array(headLength);
  let sum = 0;
  for (let i = 0; i < headLength; i++) {
    sum += Math.exp((values[i] - top) / temperature);
    cumulative[i] = sum;
  }
  // The tail's weight: every entry after the head weighs at most the head's last one; the GPU's
  // sum covers the whole row after the head, so it bounds a top-k list from above only.
  const lastWeight = headLength > 0 ? Math.exp((values[headLength - 1] - top) / temperature) : 0;
  const gpu = tailWeightBounds(head.tailWeight, head.rowLength);
  const tailHigh = Math.min((limit - headLength) * lastWeight, gpu.high);
  const tailLow = limit === head.rowLength ? Math.min(gpu.low, tailHigh) : 0;
  const low = (x: number) => x * (1 - FLOAT64_SLACK);
  const high = (x: number) => x * (1 + FLOAT64_SLACK);
  // The first head index whose cumulative certainly / possibly passes a bound; -1: not in the head.
  const firstCertain = (passes: (c: number) => boolean) => cumulative.findIndex((c) => passes(low(c)));
  const firstPossible = (passes: (c: number) => boolean) => cumulative.findIndex((c) => passes(high(c)));

  let totalLow = low(sum + tailLow);
  let totalHigh = high(sum + tailHigh);
  if (topP < 1) {
    // sampleRow keeps the shortest prefix whose cumulative reaches topP x sum.
    const earliest = firstPossible((c) => c >= topP * totalLow);
    const latest = firstCertain((c) => c >= topP * totalHigh);
    if (latest < 0 || earliest !== latest) return null;
    totalLow = low(cumulative[latest]);
    totalHigh = high(cumulative[latest]);
  }
  // The draw: the first candidate whose cumulative exceeds uniform x total.
  const earliest = firstPossible((c) => c > uniform * totalLow);
  const latest = firstCertain((c) => c > uniform * totalHigh);
  if (latest < 0 || earliest !== latest) return null;
  return ids[latest];
}
