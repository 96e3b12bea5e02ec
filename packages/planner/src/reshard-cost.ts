import type { ParallelConfig } from '@seesaw/model';
import type { ClusterProfile, LinkProfile } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';
import type { ReplicaLayout } from './replica-layout.ts';

export type ReshardRoute = 'p2p' | 'host' | 'auto';

export interface ReshardEstimate {
  seconds: number;
  /** Bytes every device needed and did not already hold, summed over the replica. */
  bytesMoved: number;
  /** The part of bytesMoved read from host memory. */
  bytesFromHost: number;
  route: ReshardRoute;
  /** The slowest device's time by part (they add up to `seconds`). */
  parts: ReshardParts;
}

export interface ReshardParts {
  /** Its pieces over the peer or host route. */
  transferSeconds: number;
  /** Assembling its new shard's tensors (device.reshardWeightAssembly; 0 when not measured). */
  assemblySeconds: number;
}

const NO_PARTS: ReshardParts = { transferSeconds: 0, assemblySeconds: 0 };

function linkSeconds(link: LinkProfile | undefined, bytes: number): number {
  return link === undefined || bytes <= 0 ? 0 : link.latencySeconds + bytes / link.bytesPerSecond;
}

interface Position {
  firstLayer: number;
  endLayer: number;
  isFirst: boolean;
  isLast: boolean;
  /** The device's TP share as a fraction range of every split tensor. */
  tpStart: number;
  tpEnd: number;
}

function positionOf(layout: ReplicaLayout, device: number): Position {
  const { tp } = layout.parallel;
  const stage = layout.stages[Math.floor(device / tp)];
  const rank = device % tp;
  return {
    firstLayer: stage.firstLayer,
    endLayer: stage.firstLayer + stage.numLayers,
    isFirst: stage.isFirst,
    isLast: stage.isLast,
    tpStart: rank / tp,
    tpEnd: (rank + 1) / tp,
  };
}

/**
 * Bytes of layer tensors and LM head two shard positions have in common (TP splits as
 * fractions of each tensor). In the old layout each such piece has exactly one holder.
 */
function splitOverlapBytes(costs: ModelCosts, a: Position, b: Position): number {
  const tpShare = Math.max(0, Math.min(a.tpEnd, b.tpEnd) - Math.max(a.tpStart, b.tpStart));
  const layers = Math.max(0, Math.min(a.endLayer, b.endLayer) - Math.max(a.firstLayer, b.firstLayer));
  const params = layers * costs.layerParams + (a.isLast && b.isLast ? costs.headParams : 0);
  return params * tpShare * costs.dtypeBytes;
}

/** The embedding is whole on every first-stage device, as the engine shards it. */
function embeddingBytes(costs: ModelCosts, p: Position): number {
  return p.isFirst ? costs.embeddingParams * costs.dtypeBytes : 0;
}

function shardBytes(costs: ModelCosts, p: Position): number {
  return splitOverlapBytes(costs, p, p) + embeddingBytes(costs, p);
}

/**
 * Time to re-shard one replica from `from` to `to` (same devices): each device keeps what
 * its old shard shares with its new one and fetches the rest, from the peer that held it
 * (p2p: limited by the larger of its incoming and outgoing bytes on the device link) or from
 * the host copy of the checkpoint (host: its incoming bytes on its host link); 'auto' takes
 * the faster route per device. Then, where measured, every device assembles its whole new shard
 * (kept pieces are copied into the new tensors too), after its transfer: a CPU device's cores
 * do one thing at a time. The new KV cache costs nothing here (see profile-reshard-local.ts).
 * Devices work in parallel: the replica takes the slowest.
 */
export function estimateReshard(
  costs: ModelCosts,
  cluster: ClusterProfile,
  from: ReplicaLayout,
  to: ReplicaLayout,
  route: ReshardRoute,
): ReshardEstimate {
  const n = from.parallel.tp * from.parallel.pp;
  if (n !== to.parallel.tp * to.parallel.pp)
    throw new RangeError('re-shard layouts must use the same devices');
  const olds = Array.from({ length: n }, (_, i) => positionOf(from, i));
  const news = Array.from({ length: n }, (_, i) => positionOf(to, i));
  const needsEmbedding = news.map((p, i) => p.isFirst && !olds[i].isFirst);
  const received = news.map(
    (p, i) =>
      shardBytes(costs, p) -
      splitOverlapBytes(costs, olds[i], p) -
      (needsEmbedding[i] ? 0 : embeddingBytes(costs, p)),
  );
  // Every split piece has one old holder; the embedding is sent by old TP rank 0 of stage 0.
  const sent = olds.map((p, i) =>
    news.reduce((sum, q, j) => {
      if (j === i) return sum;
      const embedding = needsEmbedding[j] && p.isFirst && p.tpStart === 0 ? embeddingBytes(costs, q) : 0;
      return sum + splitOverlapBytes(costs, p, q) + embedding;
    }, 0),
  );
  const p2pLink =
    from.hosts.length > 1 ? cluster.interHostLink : (cluster.reshardPeerLink ?? cluster.intraHostLink);
  const hostLink = cluster.device.reshardHostLink ?? cluster.device.hostLink;
  if (received.every((bytes, i) => bytes <= 0 && sent[i] <= 0))
    return { seconds: 0, bytesMoved: 0, bytesFromHost: 0, route, parts: NO_PARTS };
  const { device } = cluster;
  let slowest = NO_PARTS;
  let seconds = 0;
  let bytesMoved = 0;
  let bytesFromHost = 0;
  for (let i = 0; i < n; i++) {
    let transferSeconds = 0;
    if (received[i] > 0 || sent[i] > 0) {
      const p2p = p2pLink.latencySeconds + Math.max(received[i], sent[i]) / p2pLink.bytesPerSecond;
      const host = hostLink.latencySeconds + received[i] / hostLink.bytesPerSecond;
      const useHost = route === 'host' || (route === 'auto' && host < p2p);
      transferSeconds = useHost ? host : p2p;
      bytesMoved += received[i];
      if (useHost) bytesFromHost += received[i];
    }
    const parts: ReshardParts = {
      transferSeconds,
      assemblySeconds: linkSeconds(device.reshardWeightAssembly, shardBytes(costs, news[i])),
    };
    const total = parts.transferSeconds + parts.assemblySeconds;
    if (total > seconds) {
      seconds = total;
      slowest = parts;
    }
  }
  return { seconds, bytesMoved, bytesFromHost, route, parts: slowest };
}

export function sameShape(a: ParallelConfig, b: ParallelConfig): boolean {
  return a.dp === b.dp && a.tp === b.tp && a.pp === b.pp;
}
