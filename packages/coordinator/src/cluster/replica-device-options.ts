/** What a ReplicaDevice is built from, and the checks it makes on that before it starts. */
import { formatParallelConfig, type ParallelConfig } from '@seesaw/model';
import type { Ready } from '@seesaw/protocol';
import type { ReplicaActor } from './replica-actor.ts';
import type { ReplicaHostSlots } from './replica-host-slots.ts';
import { oneReplica } from './replica-layouts.ts';
import type { ReshardPlanner } from './replica-reshard.ts';

export interface ReplicaDeviceOptions {
  dpRank: number;
  /** By local device index, [0, tp * pp). */
  actors: ReplicaActor[];
  /** [static layout] or [prefill, decode]; dp is ignored (this is one replica). */
  layouts: readonly ParallelConfig[];
  /** Every actor's answer to its layout-0 loadShard, by local device index. */
  ready: Ready[];
  blockSize: number;
  /** Plans the re-shards of a two-layout replica (required there). */
  planner?: ReshardPlanner;
  hostSlots?: ReplicaHostSlots;
  /** Ask every device for a sha256 of its weights on each re-shard (tests). */
  isWeightDigestReturned?: boolean;
  /** One line per switch. */
  log?: (line: string) => void;
}

/** Refuses options a replica cannot run: layouts that do not span its actors, a missing planner or answer. */
export function checkReplicaDeviceOptions(options: ReplicaDeviceOptions): void {
  const { actors, layouts, ready } = options;
  if (layouts.length !== 1 && layouts.length !== 2)
    throw new RangeError(`a replica runs one layout or two (prefill, decode), not ${layouts.length}`);
  if (layouts.some((layout) => layout.tp * layout.pp !== actors.length)) {
    const names = layouts.map((layout) => formatParallelConfig(oneReplica(layout)));
    throw new RangeError(
      `${layouts.length === 1 ? 'layout' : 'layouts'} ${names.join(' and ')} ` +
        `must ${layouts.length === 1 ? '' : 'both '}span the replica's ${actors.length} devices`,
    );
  }
  if (layouts.length === 2 && !options.planner)
    throw new RangeError('a replica with two layouts needs a re-shard planner');
  if (ready.length !== actors.length)
    throw new RangeError(`${actors.length} actors but ${ready.length} ready`);
}
