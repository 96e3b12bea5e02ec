/**
 * Choosing a new DxTyPz configuration after devices are lost.
 *
 * Rule, in order of priority, over every (dp, tp, pp) the model can be split by:
 *   1. use as many of the healthy devices as possible (dp * tp * pp <= numHealthy, largest first);
 *   2. keep the lost configuration's replica shape (same tp and pp) when it fits, so each replica
 *      runs exactly as it did before;
 *   3. otherwise the most replicas (largest dp): the fewest devices per replica, so the least
 *      communication per token, which on the small models this runs is the highest throughput;
 *   4. then the larger tp (one step's latency is split, not queued behind pipeline stages).
 * A replica must span at least minDevicesPerReplica devices (tp * pp): the caller's way of saying
 * that the weights do not fit on fewer. Null when nothing qualifies.
 */
import { type ModelConfig, type ParallelConfig, validateForModel } from '@seesaw/model';

export interface ReplanOptions {
  /** Fewest devices (tp * pp) one copy of the model must be spread over. Default 1. */
  minDevicesPerReplica?: number;
}

function isValidFor(parallel: ParallelConfig, model: ModelConfig): boolean {
  try {
    validateForModel(parallel, model);
    return true;
  } catch {
    return false;
  }
}

/** Negative when a is the better re-plan, by the rule above. */
function compareCandidates(a: ParallelConfig, b: ParallelConfig, previous: ParallelConfig): number {
  const devices = (c: ParallelConfig) => c.dp * c.tp * c.pp;
  const keepsShape = (c: ParallelConfig) => (c.tp === previous.tp && c.pp === previous.pp ? 1 : 0);
  return devices(b) - devices(a) || keepsShape(b) - keepsShape(a) || b.dp - a.dp || b.tp - a.tp;
}

/** The configuration to resume on with numHealthy devices, or null when none is valid. */
export function replanConfig(
  previous: ParallelConfig,
  numHealthy: number,
  model: ModelConfig,
  options: ReplanOptions = {},
): ParallelConfig | null {
  if (!Number.isSafeInteger(numHealthy) || numHealthy < 0) {
    throw new RangeError(`numHealthy must be a whole number >= 0, got ${numHealthy}`);
  }
  const minPerReplica = options.minDevicesPerReplica ?? 1;
  let best: ParallelConfig | null = null;
  for (let tp = 1; tp <= numHealthy; tp++) {
    for (let pp = 1; tp * pp <= numHealthy; pp++) {
      if (tp * pp < minPerReplica) continue;
      const candidate = { dp: Math.floor(numHealthy / (tp * pp)), tp, pp };
      if (!isValidFor(candidate, model)) continue;
      if (best === null || compareCandidates(candidate, best, previous) < 0) best = candidate;
    }
  }
  return best;
}
