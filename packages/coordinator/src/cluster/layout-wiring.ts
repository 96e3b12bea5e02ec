/**
 * The channels and shared-memory groups that join a LocalCluster's device workers, made on the
 * coordinator before spawning (each worker gets its ends at spawn). Device index g is the same
 * worker under every layout: g = dpRank * N + local index, N = tp * pp devices per replica.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ParallelConfig } from '@seesaw/model';

/** One layout's wiring, by global device index. */
export interface LayoutWiring {
  /** This device's TP group descriptor in the layout; undefined where tp = 1. */
  groups: Array<unknown | undefined>;
  /** Pipeline links: `previous` receives from stage s-1, `next` sends to stage s+1 (same TP rank). */
  pipeline: Array<{ previous?: MessagePort; next?: MessagePort }>;
}

/** The two ends of a link between local devices a and b of a replica (undefined: not on this host). */
export type LinkEnds<P> = [P | undefined, P | undefined];

/**
 * One replica's pipeline links, by local index (stage * tp + tpRank): `next` of stage s and
 * `previous` of stage s + 1 are the ends of link(s * tp + r, (s + 1) * tp + r), same TP rank.
 * LocalCluster links with MessageChannels; a host agent also across hosts.
 */
export function wireReplicaPipeline<P>(
  tp: number,
  pp: number,
  link: (a: number, b: number) => LinkEnds<P>,
): Array<{ previous?: P; next?: P }> {
  const ends: Array<{ previous?: P; next?: P }> = Array.from({ length: tp * pp }, () => ({}));
  for (let stage = 0; stage + 1 < pp; stage++) {
    for (let tpRank = 0; tpRank < tp; tpRank++) {
      const [a, b] = [stage * tp + tpRank, (stage + 1) * tp + tpRank];
      const [next, previous] = link(a, b);
      if (next) ends[a].next = next;
      if (previous) ends[b].previous = previous;
    }
  }
  return ends;
}

const channel = (): LinkEnds<MessagePort> => {
  const { port1, port2 } = new MessageChannel();
  return [port1, port2];
};

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
  const groups: Array<unknown | undefined> = [];
  const pipeline: LayoutWiring['pipeline'] = [];
  for (let dpRank = 0; dpRank < dp; dpRank++) {
    for (let ppStage = 0; ppStage < pp; ppStage++)
      groups.push(...(tp > 1 ? createTpGroup!(tp) : [undefined]).slice(0, tp));
    pipeline.push(...wireReplicaPipeline(tp, pp, channel));
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
