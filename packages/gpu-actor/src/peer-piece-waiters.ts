/**
 * Promises waiting on weight pieces of a re-shard, by (reshardId, peer device, slice): the
 * pieces a peer sends (weight-slice-inbox.ts) and the receipts it sends back for pieces it read
 * in place (weight-piece-receipts.ts). A key may be waited on twice (a piece may come twice);
 * each value goes to the oldest waiter. A wait fails after its timeout, and every wait on a peer
 * fails once that peer's link has closed.
 */
import type { TensorSlice } from '@seesaw/model';

/** The key of a piece: the re-shard id comes first (weight-slice-inbox.ts reads it back). */
export function pieceKey(reshardId: number, peer: number, slice: TensorSlice): string {
  return `${reshardId}/${peer}/${slice.name} ${slice.axis} ${slice.start} ${slice.end}`;
}

function peerOf(key: string): number {
  const first = key.indexOf('/');
  return Number(key.slice(first + 1, key.indexOf('/', first + 1)));
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

export class PeerPieceWaiters<T> {
  private readonly waiters = new Map<string, Waiter<T>[]>();
  private readonly closedPeers = new Map<number, string>();

  /**
   * Resolves with the value given to `resolveNext` for this piece; rejects with `timeoutMessage`
   * after `timeoutMs`, or when the peer's link is (or becomes) closed.
   */
  wait(
    reshardId: number,
    peer: number,
    slice: TensorSlice,
    timeoutMs: number,
    timeoutMessage: string,
  ): Promise<T> {
    const closed = this.closedPeers.get(peer);
    if (closed !== undefined) return Promise.reject(new Error(`link to device ${peer} is closed: ${closed}`));
    const key = pieceKey(reshardId, peer, slice);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const queue = this.waiters.get(key) ?? [];
        const index = queue.indexOf(waiter);
        if (index >= 0) queue.splice(index, 1);
        if (queue.length === 0) this.waiters.delete(key);
        reject(new Error(timeoutMessage));
      }, timeoutMs);
      const waiter: Waiter<T> = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const queue = this.waiters.get(key);
      if (queue) queue.push(waiter);
      else this.waiters.set(key, [waiter]);
    });
  }

  /** Gives `value` to the oldest wait on `key`; false when nobody waits on it. */
  resolveNext(key: string, value: T): boolean {
    const queue = this.waiters.get(key);
    const waiter = queue?.shift();
    if (queue?.length === 0) this.waiters.delete(key);
    waiter?.resolve(value);
    return waiter !== undefined;
  }

  /** Fails every wait on `peer`, now and later: its link closed for `reason`. */
  closePeer(peer: number, reason: string): void {
    this.closedPeers.set(peer, reason);
    for (const [key, queue] of this.waiters) {
      if (peerOf(key) !== peer) continue;
      for (const waiter of queue) waiter.reject(new Error(`link to device ${peer} closed: ${reason}`));
      this.waiters.delete(key);
    }
  }

  /** Waits not yet answered (tests, leak checks). */
  get size(): number {
    let total = 0;
    for (const queue of this.waiters.values()) total += queue.length;
    return total;
  }
}
