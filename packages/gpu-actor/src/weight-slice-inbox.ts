/**
 * Weight pieces peers send while re-sharding, by (reshardId, sending device, slice). A peer may
 * run ahead: its pieces can arrive before this device got its own `reshard`, so everything is
 * buffered from the moment the links open until the matching take().
 */
import type { TensorSlice } from '@seesaw/model';
import type { LinkEndpoint } from './device-worker-links.ts';

interface Waiter {
  resolve: (bytes: Uint8Array) => void;
  reject: (error: Error) => void;
}

function pieceKey(reshardId: number, from: number, slice: TensorSlice): string {
  return `${reshardId}/${from}/${slice.name} ${slice.axis} ${slice.start} ${slice.end}`;
}

export class WeightSliceInbox {
  /** Arrived before anyone asked: one queue per key (a piece may legitimately come twice). */
  private readonly arrived = new Map<string, Uint8Array[]>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly closedPeers = new Map<number, string>();

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
    link.onClose((reason) => {
      this.closedPeers.set(from, reason);
      const prefix = `/${from}/`;
      for (const [key, waiters] of this.waiters) {
        if (!key.slice(key.indexOf('/')).startsWith(prefix)) continue;
        for (const waiter of waiters) waiter.reject(new Error(`link to device ${from} closed: ${reason}`));
        this.waiters.delete(key);
      }
    });
  }

  /** The raw bytes of `slice` from device `from` in re-shard `reshardId`, once they have come. */
  take(reshardId: number, from: number, slice: TensorSlice, timeoutMs: number): Promise<Uint8Array> {
    const key = pieceKey(reshardId, from, slice);
    const queue = this.arrived.get(key);
    const bytes = queue?.shift();
    if (queue && queue.length === 0) this.arrived.delete(key);
    if (bytes) return Promise.resolve(bytes);
    const closed = this.closedPeers.get(from);
    if (closed !== undefined) return Promise.reject(new Error(`link to device ${from} is closed: ${closed}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const waiters = this.waiters.get(key) ?? [];
        const index = waiters.indexOf(waiter);
        if (index >= 0) waiters.splice(index, 1);
        if (waiters.length === 0) this.waiters.delete(key);
        reject(
          new Error(
            `re-shard ${reshardId}: "${slice.name}" ${slice.axis} [${slice.start}, ${slice.end}) ` +
              `from device ${from} did not come within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const waiters = this.waiters.get(key);
      if (waiters) waiters.push(waiter);
      else this.waiters.set(key, [waiter]);
    });
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
    const waiters = this.waiters.get(key);
    const waiter = waiters?.shift();
    if (waiters && waiters.length === 0) this.waiters.delete(key);
    if (waiter) {
      waiter.resolve(bytes);
      return;
    }
    const queue = this.arrived.get(key);
    if (queue) queue.push(bytes);
    else this.arrived.set(key, [bytes]);
  }
}
