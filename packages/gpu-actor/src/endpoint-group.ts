import type { DeviceToDevice, Endpoint, Tensor } from '@seesaw/protocol';
import { sumByHalvingTree, type TensorParallelGroup } from './tensor-parallel-group.ts';

/** A link to one peer rank of the group. */
export type PeerLink = Endpoint<DeviceToDevice, DeviceToDevice>;

interface Arrival {
  fromRank: number;
  data: Float32Array;
}

/**
 * Tensor-parallel collectives over message endpoints (a WebSocket between hosts, or any other
 * transport): a full mesh where every rank sends its whole contribution to every peer and then
 * combines all of them by the halving tree over ranks (sumByHalvingTree). For the 2-4 ranks a TP group spans this moves the same
 * bytes per rank as a ring (tp - 1 buffers each way) in one round instead of 2(tp - 1), and
 * every rank sums the same inputs in the same order, so results are bit-identical everywhere.
 *
 * Operation n of every rank meets operation n of the others: each rank numbers its own
 * collectives (opId), and arrivals for a later op wait in their own bucket.
 */
export class EndpointGroup implements TensorParallelGroup {
  private nextOpId = 0;
  private readonly arrivals = new Map<number, Arrival[]>();
  private readonly waiters = new Map<number, () => void>();
  private failure: Error | undefined;

  /** peers[r] links to rank r; peers[rank] (this rank) is ignored. */
  constructor(
    readonly rank: number,
    private readonly peers: ReadonlyArray<PeerLink | undefined>,
  ) {
    peers.forEach((peer, r) => {
      if (r === rank || !peer) return;
      peer.onMessage((message, tensors) => this.receive(r, message, tensors));
      peer.onClose((reason) => this.fail(new Error(`tensor-parallel peer rank ${r} lost: ${reason}`)));
    });
  }

  get size(): number {
    return this.peers.length;
  }

  async allReduceSum(buf: Float32Array): Promise<void> {
    const parts = await this.exchange(buf);
    sumByHalvingTree(buf, parts);
  }

  async allGather(local: Float32Array, out: Float32Array): Promise<void> {
    const parts = await this.exchange(local);
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    if (total !== out.length) throw new RangeError(`allGather: parts total ${total}, out has ${out.length}`);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
  }

  /** Sends `local` to every peer and resolves with every rank's contribution, rank order. */
  private async exchange(local: Float32Array): Promise<Float32Array[]> {
    if (this.failure) throw this.failure;
    const opId = this.nextOpId++;
    const tensor: Tensor = { dtype: 'f32', shape: [local.length], data: local };
    this.peers.forEach((peer, r) => {
      if (r === this.rank || !peer) return;
      peer.post(
        {
          tag: 'allReduceChunk',
          opId,
          stepId: 0,
          round: 0,
          chunkIndex: 0,
          numChunks: 1,
          fromRank: this.rank,
        },
        [tensor],
      );
    });
    const arrived = await this.waitForAll(opId);
    const parts: Float32Array[] = new Array(this.size);
    parts[this.rank] = local;
    for (const arrival of arrived) parts[arrival.fromRank] = arrival.data;
    return parts;
  }

  private waitForAll(opId: number): Promise<Arrival[]> {
    const isComplete = () => (this.arrivals.get(opId)?.length ?? 0) === this.size - 1;
    const take = () => {
      const arrived = this.arrivals.get(opId) ?? [];
      this.arrivals.delete(opId);
      return arrived;
    };
    if (isComplete()) return Promise.resolve(take());
    return new Promise((resolve, reject) => {
      this.waiters.set(opId, () => {
        if (this.failure) reject(this.failure);
        else if (isComplete()) {
          this.waiters.delete(opId);
          resolve(take());
        }
      });
    });
  }

  private receive(fromRank: number, message: DeviceToDevice, tensors: Tensor[]): void {
    if (message.tag !== 'allReduceChunk') return;
    if (message.fromRank !== fromRank) {
      this.fail(new Error(`link of rank ${fromRank} carried a chunk from rank ${message.fromRank}`));
      return;
    }
    const data = tensors[0]?.data;
    if (!(data instanceof Float32Array)) {
      this.fail(new Error(`rank ${fromRank} sent a non-f32 all-reduce chunk`));
      return;
    }
    const bucket = this.arrivals.get(message.opId) ?? [];
    if (bucket.some((arrival) => arrival.fromRank === fromRank)) {
      this.fail(new Error(`rank ${fromRank} sent op ${message.opId} twice`));
      return;
    }
    // Copied: the received tensor is a view on a frame the transport may reuse.
    bucket.push({ fromRank, data: data.slice() });
    this.arrivals.set(message.opId, bucket);
    this.waiters.get(message.opId)?.();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const wake of this.waiters.values()) wake();
    this.waiters.clear();
  }
}
