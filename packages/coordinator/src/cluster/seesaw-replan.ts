/**
 * Choosing what a Seesaw run goes on with after every replica lost a device: a new prefill/decode
 * pair on the healthy devices, or a static layout when no pair fits.
 *
 * Rule, in order of priority, over every pair (prefill TaPb, decode TcPd, a * b = c * d = n
 * devices per replica, dp = floor(numHealthy / n), the two layouts different) the model can be
 * split by, with n >= minDevicesPerReplica:
 *   1. any pair before a static layout (the run asked for Seesaw; a static layout only when no
 *      pair fits, chosen by replanConfig's rule);
 *   2. the most healthy devices used (dp * n);
 *   3. the lost pair's own replica shapes when they fit, so each replica runs as before;
 *   4. the paper's pairing: the prefill layout with the most pipeline stages, then the decode
 *      layout with the most TP ranks (prefill P_n, decode T_n where the model splits so);
 *   5. then the most replicas (largest dp).
 * ranked() gives every candidate in that order, so a caller whose first choice cannot run
 * (a re-shard that does not fit a device) takes the next.
 */
import { type ModelConfig, type ParallelConfig, validateForModel } from '@seesaw/model';
import { replanConfig } from './replan.ts';

export type SeesawReplan =
  | { kind: 'seesaw'; prefill: ParallelConfig; decode: ParallelConfig }
  | { kind: 'static'; parallel: ParallelConfig };

export interface SeesawReplanOptions {
  /** Fewest devices (tp * pp) one copy of the model must be spread over. Default 1. */
  minDevicesPerReplica?: number;
}

type Pair = Extract<SeesawReplan, { kind: 'seesaw' }>;

function isValidFor(parallel: ParallelConfig, model: ModelConfig): boolean {
  try {
    validateForModel(parallel, model);
    return true;
  } catch {
    return false;
  }
}

/** Replica shapes (tp, pp) of n devices the model splits by, with dp replicas. */
function shapesOf(n: number, dp: number, model: ModelConfig): ParallelConfig[] {
  const shapes: ParallelConfig[] = [];
  for (let tp = 1; tp <= n; tp++) {
    if (n % tp !== 0) continue;
    const shape = { dp, tp, pp: n / tp };
    if (isValidFor(shape, model)) shapes.push(shape);
  }
  return shapes;
}

const sameShape = (a: ParallelConfig, b: ParallelConfig) => a.tp === b.tp && a.pp === b.pp;

/** Negative when a is the better pair, by the rule above (2-5). */
function comparePairs(a: Pair, b: Pair, lost: Pair): number {
  const devices = (p: Pair) => p.prefill.dp * p.prefill.tp * p.prefill.pp;
  const keepsShapes = (p: Pair) =>
    sameShape(p.prefill, lost.prefill) && sameShape(p.decode, lost.decode) ? 1 : 0;
  return (
    devices(b) - devices(a) ||
    keepsShapes(b) - keepsShapes(a) ||
    b.prefill.pp - a.prefill.pp ||
    b.decode.tp - a.decode.tp ||
    b.prefill.dp - a.prefill.dp
  );
}

/** Every pair that fits numHealthy devices, best first; then the static layout, if any. */
export function rankedSeesawReplans(
  lost: { prefill: ParallelConfig; decode: ParallelConfig },
  numHealthy: number,
  model: ModelConfig,
  options: SeesawReplanOptions = {},
): SeesawReplan[] {
  if (!Number.isSafeInteger(numHealthy) || numHealthy < 0) {
    throw new RangeError(`numHealthy must be a whole number >= 0, got ${numHealthy}`);
  }
  const lostPair: Pair = { kind: 'seesaw', ...lost };
  const minPerReplica = Math.max(2, options.minDevicesPerReplica ?? 1);
  const pairs: Pair[] = [];
  for (let n = minPerReplica; n <= numHealthy; n++) {
    const dp = Math.floor(numHealthy / n);
    const shapes = shapesOf(n, dp, model);
    for (const prefill of shapes) {
      for (const decode of shapes) {
        if (!sameShape(prefill, decode)) pairs.push({ kind: 'seesaw', prefill, decode });
      }
    }
  }
  pairs.sort((a, b) => comparePairs(a, b, lostPair));
  const parallel = replanConfig(lost.prefill, numHealthy, model, options);
  return parallel === null ? pairs : [...pairs, { kind: 'static', parallel }];
}
