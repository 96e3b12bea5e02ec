/**
 * Weight pieces peers send while re-sharding, by (reshardId, sending device, slice). A peer may
 * run ahead: its pieces can arrive before this device got its own `reshard`, so everything is
 * buffered from the moment the links open until the matching take().
 */
import type { TensorSlice } from '@seesaw/model';
import type { LinkEndpoint } from './device-worker-links.ts';
import { PeerPieceWaiters, pieceKey } from './peer-piece-waiters.ts';

export class WeightSliceInbox {
  /** Arrived before anyone asked: one queue per key (a piece may legitimately come twice). */
  private readonly arrived = new Map<string, Uint8Array[]>();
  private readonly waiters = new PeerPieceWaiters<Uint8Array>();

  /** Buffers every weightSlice that comes over `link` from local device `from`. */
  attach(link: LinkEndpoint, from: number): void {
    link.onMessage((message, tensors) => {
      if (message.tag !== 'weightSlice') return;
      const tensor = tensors[0];
      if (tensor?.dtype !== 'u8' || !(tensor.data instanceof Uint8Array)) return;
      // No copy: over a worker-port link (the only kind LinkEndpoint is) a frame is an
      // ArrayBuffer transferred to this thread and owned by it alone, and a piece in the
      // sender's shared memory stays unchanged until this device sends its weightSliceTaken.
      this.deliver(pieceKey(message.reshardId, from, message), tensor.data);
    });
    link.onClose((reason) => this.waiters.closePeer(from, reason));
  }

  /** The raw bytes of `slice` from device `from` in re-shard `reshardId`, once they have come. */
  take(reshardId: number, from: number, slice: TensorSlice, timeoutMs: number): Promise<Uint8Array> {
    const key = pieceKey(reshardId, from, slice);
    const queue = this.arrived.get(key);
    const bytes = queue?.shift();
    if (queue && queue.length === 0) this.arrived.delete(key);
    if (bytes) return Promise.resolve(bytes);
    return this.waiters.wait(
      reshardId,
      from,
      slice,
      timeoutMs,
      `re-shard ${reshardId}: "${slice.name}" ${slice.axis} [${slice.start}, ${slice.end}) ` +
        `from device ${from} did not come within ${timeoutMs} ms`,
    );
  }

  /** Drops buffered pieces of re-shards before `reshardId` (a failed switch's leftovers). */
  discardBefore(reshardId: number): void {
    for (const key of this.arrived.keys()) {
      if (Number(key.slice(0, key.indexOf('/'))) < reshardId) this.arrived.delete(key);
    }
  }

  /** Pieces buffered and not taken yet (tests, leak checks). */
  get numBuffered(): number {
    let total = 0;
    for (const queue of this.arrived.values()) total += queue.length;
    return total;
  }

  private deliver(key: string, bytes: Uint8Array): void {
    if (this.waiters.resolveNext(key, bytes)) return;
    const queue = this.arrived.get(key);
    if (queue) queue.push(bytes);
    else this.arrived.set(key, [bytes]);
  }
}
