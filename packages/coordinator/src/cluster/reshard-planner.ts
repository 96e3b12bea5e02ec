/**
 * The coordinator's re-shard planner for one model: tensor sizes come from the checkpoint header
 * (read once, the host keeps the model), plans from planReshard, memoised per direction since
 * every replica and every switch in the same direction gets the same plan.
 */
import {
  Checkpoint,
  formatParallelConfig,
  type ModelConfig,
  type ParallelConfig,
  planReshard,
  type ReshardLinkRates,
  type ReshardPlan,
  type ReshardRoute,
} from '@seesaw/model';
import type { ReshardPlanner } from './replica-reshard.ts';

/** Device-to-device 4 GB/s, host-to-device 2 GB/s: the defaults of a switch with no measured rates. */
export const DEFAULT_RESHARD_RATES: ReshardLinkRates = {
  p2pBytesPerSecond: 4e9,
  hostBytesPerSecond: 2e9,
};

export interface ReshardPlannerOptions {
  route?: ReshardRoute;
  rates?: ReshardLinkRates;
  /** Each device's memory budget: a plan whose peak weights exceed it is refused. */
  deviceMemoryBytes?: number;
  /** Devices keep both layouts' shards in a host weight cache: route 'host' reloads whole shards. */
  isHeldReloaded?: boolean;
}

/** Element size and shape of every tensor in the checkpoint at modelDir, from its header. */
export function checkpointTensorBytes(
  modelDir: string,
): (name: string) => { dtypeBytes: number; shape: number[] } {
  const checkpoint = Checkpoint.open(modelDir);
  const sizes = new Map<string, { dtypeBytes: number; shape: number[] }>();
  try {
    for (const name of checkpoint.names()) {
      const info = checkpoint.info(name);
      const numElements = info.shape.reduce((product, n) => product * n, 1);
      sizes.set(name, { dtypeBytes: numElements > 0 ? info.byteLength / numElements : 0, shape: info.shape });
    }
  } finally {
    checkpoint.close();
  }
  return (name) => {
    const size = sizes.get(name);
    if (!size) throw new Error(`${modelDir}: the checkpoint has no tensor "${name}"`);
    return size;
  };
}

export function createReshardPlanner(
  config: ModelConfig,
  tensorBytes: (name: string) => { dtypeBytes: number; shape: number[] },
  options: ReshardPlannerOptions = {},
): ReshardPlanner {
  const plans = new Map<string, ReshardPlan>();
  const planOptions: Parameters<typeof planReshard>[4] = {
    route: options.route ?? 'auto',
    rates: options.rates ?? DEFAULT_RESHARD_RATES,
  };
  if (options.deviceMemoryBytes !== undefined) planOptions.deviceMemoryBytes = options.deviceMemoryBytes;
  if (options.isHeldReloaded) planOptions.isHeldReloaded = true;
  return (from: ParallelConfig, to: ParallelConfig) => {
    const key = `${formatParallelConfig(from)}->${formatParallelConfig(to)}`;
    let plan = plans.get(key);
    if (!plan) {
      plan = planReshard(config, tensorBytes, from, to, planOptions);
      plans.set(key, plan);
    }
    return plan;
  };
}
