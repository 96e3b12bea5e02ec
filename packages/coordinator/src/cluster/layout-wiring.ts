/**
 * The channels and shared-memory groups that join a LocalCluster's device workers, made on the
 * coordinator before spawning (each worker gets its ends at spawn). Device index g is the same
 * worker under every layout: g = dpRank * N + local index, N = tp * pp devices per replica.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { deviceRanks, type ParallelConfig } from '@seesaw/model';

/** One layout's wiring, by global device index. */
export interface LayoutWiring {
  /** This device's TP group descriptor in the layout; undefined where tp = 1. */
  groups: Array<unknown | undefined>;
  /** Pipeline links: `previous` receives from stage s-1, `next` sends to stage s+1 (same TP rank). */
  pipeline: Array<{ previous?: MessagePort; next?: MessagePort }>;
}

/**
 * One TP group per (dp, stage), created by createTpGroup (descriptor r to TP rank r), and one
 * MessageChannel per (dp, stage boundary, TP rank).
 */
export function wireLayout(
  parallel: ParallelConfig,
  createTpGroup: ((size: number) => unknown[]) | undefined,
): LayoutWiring {
  const { dp, tp, pp } = parallel;
  if (tp > 1 && !createTpGroup) throw new Error(`TP ${tp} needs options.createTpGroup`);
  const ranks = deviceRanks(parallel);
  const indexOf = (dpRank: number, ppStage: number, tpRank: number) => (dpRank * pp + ppStage) * tp + tpRank;
  const groups: Array<unknown | undefined> = ranks.map(() => undefined);
  const pipeline: LayoutWiring['pipeline'] = ranks.map(() => ({}));
  for (let dpRank = 0; dpRank < dp; dpRank++) {
    for (let ppStage = 0; ppStage < pp; ppStage++) {
      if (tp > 1) {
        const descriptors = createTpGroup!(tp);
        for (let tpRank = 0; tpRank < tp; tpRank++)
          groups[indexOf(dpRank, ppStage, tpRank)] = descriptors[tpRank];
      }
      if (ppStage === pp - 1) continue;
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const { port1, port2 } = new MessageChannel();
        pipeline[indexOf(dpRank, ppStage, tpRank)].next = port1;
        pipeline[indexOf(dpRank, ppStage + 1, tpRank)].previous = port2;
      }
    }
  }
  return { groups, pipeline };
}

/**
 * A full mesh of MessageChannels inside each replica, for weight slices during a re-shard:
 * peers[g][j] links device g to local device j of its replica (undefined at g's own index).
 */
export function wireReshardMesh(
  dp: number,
  devicesPerReplica: number,
): Array<Array<MessagePort | undefined>> {
  const peers = Array.from({ length: dp * devicesPerReplica }, () =>
    Array.from<MessagePort | undefined>({ length: devicesPerReplica }),
  );
  for (let dpRank = 0; dpRank < dp; dpRank++) {
    const base = dpRank * devicesPerReplica;
    for (let i = 0; i < devicesPerReplica; i++) {
      for (let j = i + 1; j < devicesPerReplica; j++) {
        const { port1, port2 } = new MessageChannel();
        peers[base + i][j] = port1;
        peers[base + j][i] = port2;
      }
    }
  }
  return peers;
}
