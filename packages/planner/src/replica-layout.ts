import { balancedRange, type ParallelConfig } from '@seesaw/model';
import type { ClusterProfile, LinkProfile } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';

/** One pipeline stage of a replica, as the cost model needs it (all its TP ranks alike). */
export interface StageLayout {
  firstLayer: number;
  numLayers: number;
  isFirst: boolean;
  isLast: boolean;
  /** The link the stage's TP ring runs over (the slower one when it spans hosts). */
  allReduceLink: LinkProfile;
  /** The link its activations take to the next stage (null for the last stage). */
  nextStageLink: LinkProfile | null;
  /** Weights one device of the stage holds, bytes. */
  weightBytesPerDevice: number;
  /** KV bytes one device of the stage holds per token of a sequence. */
  kvBytesPerTokenPerDevice: number;
}

/** One DP replica (tp x pp devices) of a cluster. */
export interface ReplicaLayout {
  parallel: ParallelConfig;
  replicaIndex: number;
  stages: StageLayout[];
  /** Host indexes the replica's devices sit on. */
  hosts: number[];
}

function slower(a: LinkProfile, b: LinkProfile): LinkProfile {
  return a.bytesPerSecond <= b.bytesPerSecond ? a : b;
}

/**
 * Lays replica `replicaIndex` of `parallel` on the cluster with the engine's device order
 * (device = (dpRank * pp + stage) * tp + tpRank, consecutive devices per host), so a TP group
 * or stage boundary crosses hosts only when the replica itself does.
 */
export function replicaLayout(
  costs: ModelCosts,
  cluster: ClusterProfile,
  parallel: ParallelConfig,
  replicaIndex: number,
): ReplicaLayout {
  const { tp, pp } = parallel;
  const hostOf = (stage: number, tpRank: number): number =>
    Math.floor(((replicaIndex * pp + stage) * tp + tpRank) / cluster.devicesPerHost);
  const bytes = costs.dtypeBytes;
  const stages: StageLayout[] = [];
  const hosts = new Set<number>();
  for (let stage = 0; stage < pp; stage++) {
    const { start, end } = balancedRange(costs.config.numLayers, pp, stage);
    const firstHost = hostOf(stage, 0);
    const lastHost = hostOf(stage, tp - 1);
    for (let rank = 0; rank < tp; rank++) hosts.add(hostOf(stage, rank));
    const crossesInTp = firstHost !== lastHost;
    const crossesToNext = stage + 1 < pp && hostOf(stage + 1, 0) !== lastHost;
    const isFirst = stage === 0;
    const isLast = stage === pp - 1;
    const numLayers = end - start;
    // The engine keeps the whole embedding on every first-stage device and splits the LM head.
    const splitParams = numLayers * costs.layerParams + (isLast ? costs.headParams : 0);
    const wholeParams = isFirst ? costs.embeddingParams : 0;
    stages.push({
      firstLayer: start,
      numLayers,
      isFirst,
      isLast,
      allReduceLink: crossesInTp
        ? slower(cluster.intraHostLink, cluster.interHostLink)
        : cluster.intraHostLink,
      nextStageLink: isLast ? null : crossesToNext ? cluster.interHostLink : cluster.intraHostLink,
      weightBytesPerDevice: (splitParams / tp + wholeParams) * bytes,
      kvBytesPerTokenPerDevice: (numLayers * costs.kvBytesPerTokenLayer) / tp,
    });
  }
  return { parallel, replicaIndex, stages, hosts: [...hosts].sort((a, b) => a - b) };
}

/** Largest weight bytes any device of the replica holds. */
export function peakWeightBytesPerDevice(layout: ReplicaLayout): number {
  return Math.max(...layout.stages.map((stage) => stage.weightBytesPerDevice));
}
