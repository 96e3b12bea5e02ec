/**
 * A replica's layouts and phases: which layout a phase runs (0 = prefill, 1 = decode), a
 * layout as one replica (dp 1), and where each local device sits in it (deviceRanks).
 */
import { deviceRanks, type ParallelConfig } from '@seesaw/model';
import type { Phase } from '../seesaw-engine.ts';
import type { ReplicaActor } from './replica-actor.ts';

export const PHASES: readonly Phase[] = ['prefill', 'decode'];

export function layoutIndex(phase: Phase): number {
  return phase === 'prefill' ? 0 : 1;
}

export function oneReplica(parallel: ParallelConfig): ParallelConfig {
  return { dp: 1, tp: parallel.tp, pp: parallel.pp };
}

/** actors[stage][tpRank] of `parallel`. */
export function arrange(parallel: ParallelConfig, actors: readonly ReplicaActor[]): ReplicaActor[][] {
  const stages: ReplicaActor[][] = Array.from({ length: parallel.pp }, () => []);
  for (const rank of deviceRanks(oneReplica(parallel)))
    stages[rank.ppStage][rank.tpRank] = actors[rank.device];
  return stages;
}

/** 'stage s tp r' of each local device under `parallel`. */
export function deviceRolesOf(parallel: ParallelConfig): string[] {
  const roles: string[] = [];
  for (const rank of deviceRanks(oneReplica(parallel)))
    roles[rank.device] = `stage ${rank.ppStage} tp ${rank.tpRank}`;
  return roles;
}
