/**
 * The pieces a re-shard sends to its peers, posted as early as memory allows. A peer that finds
 * its pieces already there builds its units as fast as it can, instead of when this device
 * reaches them; but what an early post costs depends on the piece:
 * - read in place (whole rows of an old slice, in shared weight memory): nothing on this host,
 *   where the peer copies straight out of this device's memory; across hosts the agent's relay
 *   copies it into socket frames at once. So such pieces go early up to EARLY_SEND_BYTES a peer
 *   not yet taken (what a relay may have to buffer), and every piece of units <= u by unit u.
 * - cut (strided, into arena scratch) or sent in frames: a copy each, so they go only
 *   CUT_SENDS_AHEAD units ahead, and their scratch comes back on the peer's receipt.
 * Posting every piece of units <= u by unit u is what keeps the executor free of cycles.
 */
import type { PieceSend } from '@seesaw/model';
import type { HeldWeights } from './held-weights.ts';
import type { PendingUnitFrees } from './pending-unit-frees.ts';
import type { ReshardIo } from './reshard-executor.ts';
import type { WeightArena } from './weight-arena.ts';

/** Bytes of in-place pieces a peer may have been posted and not taken yet, beyond the current unit's. */
export const EARLY_SEND_BYTES = 256 << 20;

/** Units ahead of its own whose cut pieces a device posts. */
export const CUT_SENDS_AHEAD = 2;

/** A send not posted yet, with where its bytes lie (looked up once: the old slices do not move). */
interface Unposted {
  send: PieceSend;
  /** Its bytes as held in shared memory, read in place; undefined for a piece that is cut. */
  view?: Uint8Array;
  /** The old unit its bytes lie in (freed only once the peer has taken them). */
  memoryUnit: number;
}

export class ReshardSends {
  private unposted: Unposted[];
  /** Bytes read in place by each peer, posted and not yet taken. */
  private readonly awaitingByPeer = new Map<number, number>();
  /** Receipts of pieces read in place out of arena scratch (each gives its scratch back). */
  readonly scratchReceipts: Array<Promise<void>> = [];
  bytesSent = 0;

  constructor(
    sends: readonly PieceSend[],
    private readonly old: HeldWeights,
    private readonly io: Pick<ReshardIo, 'send'>,
    private readonly pendingFrees: PendingUnitFrees,
    private readonly arena: WeightArena | undefined,
    private readonly earlyBytesPerPeer = EARLY_SEND_BYTES,
  ) {
    this.unposted = [...sends]
      .sort((a, b) => a.unit - b.unit)
      .map((send) => {
        const view = old.view(send.slice);
        const isInPlace = view !== undefined && view.buffer instanceof SharedArrayBuffer;
        return { send, view: isInPlace ? view : undefined, memoryUnit: old.unitOf(send.slice) };
      });
  }

  /** Posts what is due by unit `unit` (-1: before the first) and what may go early. */
  postFor(unit: number): void {
    const left: Unposted[] = [];
    for (const pending of this.unposted) {
      const { send, view } = pending;
      if (view) {
        const awaiting = this.awaitingByPeer.get(send.to) ?? 0;
        if (send.unit <= unit || awaiting + view.byteLength <= this.earlyBytesPerPeer)
          this.postInPlace(pending);
        else left.push(pending);
      } else if (send.unit <= unit + CUT_SENDS_AHEAD) {
        this.postCut(pending);
      } else {
        left.push(pending);
      }
    }
    this.unposted = left;
  }

  private postInPlace({ send, view, memoryUnit }: Unposted): void {
    const bytes = view!;
    const receipt = this.io.send(send.to, send.slice, bytes);
    this.bytesSent += bytes.byteLength;
    if (!receipt) return;
    this.pendingFrees.addReceipt(memoryUnit, receipt);
    this.awaitingByPeer.set(send.to, (this.awaitingByPeer.get(send.to) ?? 0) + bytes.byteLength);
    receipt.then(
      () => this.awaitingByPeer.set(send.to, this.awaitingByPeer.get(send.to)! - bytes.byteLength),
      () => {}, // a failed receipt is thrown where its unit's memory is awaited (PendingUnitFrees)
    );
  }

  /** A strided piece cut into arena scratch (touched memory), given back once the frame holds it or the peer has taken it. */
  private postCut({ send, memoryUnit }: Unposted): void {
    const arena = this.arena;
    let scratch: Uint8Array | undefined;
    const bytes = this.old.extract(send.slice, (numBytes) => {
      scratch = arena ? arena.alloc(numBytes) : new Uint8Array(numBytes);
      return scratch;
    });
    const receipt = this.io.send(send.to, send.slice, bytes);
    this.bytesSent += bytes.byteLength;
    if (!receipt) {
      if (scratch && arena) arena.free(scratch);
    } else if (scratch) {
      const block = scratch;
      const freed = receipt.then(() => arena?.free(block));
      freed.catch(() => {}); // awaited at the end; a switch that fails before then drops it
      this.scratchReceipts.push(freed);
    } else {
      this.pendingFrees.addReceipt(memoryUnit, receipt);
    }
  }
}
