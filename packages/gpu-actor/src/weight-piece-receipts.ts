/**
 * The sending side of weight pieces a peer reads in place: a piece posted as a descriptor into
 * this device's shared weight memory (weight-arena.ts) is only safe to overwrite once the peer
 * has copied it, which it says with weightSliceTaken. `expect` gives the promise of that receipt;
 * the re-shard executor waits for them before it frees the slices the pieces lie in.
 */
import type { TensorSlice } from '@seesaw/model';
import type { LinkEndpoint } from './device-worker-links.ts';

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

function receiptKey(reshardId: number, peer: number, slice: TensorSlice): string {
  return `${reshardId}/${peer}/${slice.name} ${slice.axis} ${slice.start} ${slice.end}`;
}

export class WeightPieceReceipts {
  /** Waiters by piece; a piece sent twice is answered twice, in order. */
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly closedPeers = new Map<number, string>();

  /** Takes the weightSliceTaken answers of local device `peer` from `link`. */
  attach(link: LinkEndpoint, peer: number): void {
    link.onMessage((message) => {
      if (message.tag !== 'weightSliceTaken') return;
      const key = receiptKey(message.reshardId, peer, message);
      const queue = this.waiters.get(key);
      const waiter = queue?.shift();
      if (queue?.length === 0) this.waiters.delete(key);
      waiter?.resolve();
    });
    link.onClose((reason) => {
      this.closedPeers.set(peer, reason);
      for (const [key, queue] of this.waiters) {
        if (key.split('/')[1] !== String(peer)) continue;
        for (const waiter of queue) waiter.reject(new Error(`link to device ${peer} closed: ${reason}`));
        this.waiters.delete(key);
      }
    });
  }

  /**
   * Resolves when device `peer` says it has taken `slice` of re-shard `reshardId`; rejects when
   * the link closes first or after `timeoutMs`. A rejection nobody awaits is not reported as
   * unhandled (the executor awaits receipts only when it is about to free their memory).
   */
  expect(reshardId: number, peer: number, slice: TensorSlice, timeoutMs: number): Promise<void> {
    const closed = this.closedPeers.get(peer);
    if (closed !== undefined) {
      const failed = Promise.reject(new Error(`link to device ${peer} is closed: ${closed}`));
      failed.catch(() => {});
      return failed;
    }
    const key = receiptKey(reshardId, peer, slice);
    const receipt = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const queue = this.waiters.get(key) ?? [];
        const index = queue.indexOf(waiter);
        if (index >= 0) queue.splice(index, 1);
        if (queue.length === 0) this.waiters.delete(key);
        reject(
          new Error(
            `re-shard ${reshardId}: device ${peer} did not take "${slice.name}" ${slice.axis} ` +
              `[${slice.start}, ${slice.end}) within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
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
    receipt.catch(() => {});
    return receipt;
  }

  /** Receipts still awaited (tests, leak checks). */
  get numAwaited(): number {
    let total = 0;
    for (const queue of this.waiters.values()) total += queue.length;
    return total;
  }
}
