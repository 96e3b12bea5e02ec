/**
 * The sending side of weight pieces a peer reads in place: a piece posted as a descriptor into
 * this device's shared weight memory (weight-arena.ts) is only safe to overwrite once the peer
 * has copied it, which it says with weightSliceTaken. `expect` gives the promise of that receipt;
 * the re-shard executor waits for them before it frees the slices the pieces lie in.
 */
import type { TensorSlice } from '@seesaw/model';
import type { LinkEndpoint } from './device-worker-links.ts';
import { PeerPieceWaiters, pieceKey } from './peer-piece-waiters.ts';

export class WeightPieceReceipts {
  /** Waits by piece; a piece sent twice is answered twice, in order. */
  private readonly waiters = new PeerPieceWaiters<void>();

  /** Takes the weightSliceTaken answers of local device `peer` from `link`. */
  attach(link: LinkEndpoint, peer: number): void {
    link.onMessage((message) => {
      if (message.tag === 'weightSliceTaken')
        this.waiters.resolveNext(pieceKey(message.reshardId, peer, message));
    });
    link.onClose((reason) => this.waiters.closePeer(peer, reason));
  }

  /**
   * Resolves when device `peer` says it has taken `slice` of re-shard `reshardId`; rejects when
   * the link closes first or after `timeoutMs`. A rejection nobody awaits is not reported as
   * unhandled (the executor awaits receipts only when it is about to free their memory).
   */
  expect(reshardId: number, peer: number, slice: TensorSlice, timeoutMs: number): Promise<void> {
    const receipt = this.waiters.wait(
      reshardId,
      peer,
      slice,
      timeoutMs,
      `re-shard ${reshardId}: device ${peer} did not take "${slice.name}" ${slice.axis} ` +
        `[${slice.start}, ${slice.end}) within ${timeoutMs} ms`,
    );
    receipt.catch(() => {});
    return receipt;
  }

  /** Receipts still awaited (tests, leak checks). */
  get numAwaited(): number {
    return this.waiters.size;
  }
}
