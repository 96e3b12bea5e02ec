/**
 * Swap-ins in flight ahead of need (StepBatch.prefetches): one per sequence, started when the
 * step that carries it is taken up and awaited only by the first later step that touches the
 * sequence. A failure is kept until that step asks, so it fails the step that needed the data
 * rather than surfacing as an unhandled rejection.
 */

import type { StepBatch } from '@seesaw/protocol';

/**
 * Sequences whose blocks a step reads, frees or copies out: it must not start on them before
 * their prefetch has landed.
 */
export function seqIdsTouchedBy(step: StepBatch): number[] {
  return [
    ...step.seqs.map((seq) => seq.seqId),
    ...step.releasedSeqIds,
    ...(step.swapOuts ?? []).map((swap) => swap.seqId),
    ...(step.kvWriteBacks ?? []).map((swap) => swap.seqId),
  ];
}

/** What waiting for some sequences' prefetches took. */
export interface PrefetchWait {
  /** Milliseconds spent waiting. */
  waitedMs: number;
  /** Prefetches waited for (already landed ones included). */
  numAwaited: number;
  /**
   * Of those, the prefetches whose data was in the blocks before the wait began: hidden behind
   * earlier steps. This, not 1 - wait / summed transfer time, is the honest hiding figure: two
   * prefetches in flight at once overlap each other, so their summed times count the same
   * milliseconds twice.
   */
  numLanded: number;
  /** Bytes the awaited prefetches moved, and the landed ones' part of them. */
  bytesAwaited: number;
  bytesLanded: number;
}

export const NO_PREFETCH_WAIT: PrefetchWait = {
  waitedMs: 0,
  numAwaited: 0,
  numLanded: 0,
  bytesAwaited: 0,
  bytesLanded: 0,
};

/** One prefetch's issue and landing, on the table's clock (performance.now() by default). */
export interface PrefetchSpan {
  issuedMs: number;
  landedMs: number;
}

interface Prefetch {
  /** Resolves with the failure, or undefined once the data is in the blocks. */
  outcome: Promise<Error | undefined>;
  /** Set when the data is in the blocks. */
  landed: boolean;
  /** Bytes fetched, once landed. */
  bytes: number;
}

export class KvPrefetchTable {
  private readonly inFlight = new Map<number, Prefetch>();
  /** Issue and landing times (this table's clock) of prefetches landed since the last take. */
  private completed: PrefetchSpan[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return this.inFlight.size;
  }

  /**
   * Starts `fetch` (kvGet, then scatter into the sequence's new blocks; resolves with the bytes
   * it moved) for `seqId`. Throws when the sequence already has a prefetch in flight: two would
   * race for its blocks.
   */
  start(seqId: number, fetch: () => Promise<number>): void {
    if (this.inFlight.has(seqId))
      throw new Error(`prefetch of sequence ${seqId}: an earlier prefetch of it is still in flight`);
    const issuedMs = this.now();
    const prefetch: Prefetch = { outcome: Promise.resolve(undefined), landed: false, bytes: 0 };
    prefetch.outcome = fetch().then(
      (bytes) => {
        this.completed.push({ issuedMs, landedMs: this.now() });
        prefetch.landed = true;
        prefetch.bytes = bytes;
        return undefined;
      },
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    this.inFlight.set(seqId, prefetch);
  }

  /**
   * Waits for the prefetches of `seqIds` (those without one are ignored) and forgets them;
   * rejects with the first failure.
   */
  async wait(seqIds: Iterable<number>): Promise<PrefetchWait> {
    const awaited: Prefetch[] = [];
    for (const seqId of seqIds) {
      const prefetch = this.inFlight.get(seqId);
      if (!prefetch) continue;
      this.inFlight.delete(seqId);
      awaited.push(prefetch);
    }
    if (awaited.length === 0) return NO_PREFETCH_WAIT;
    const landed = awaited.filter((prefetch) => prefetch.landed);
    const start = this.now();
    const failures = await Promise.all(awaited.map((prefetch) => prefetch.outcome));
    const waitedMs = this.now() - start;
    const failure = failures.find((error) => error !== undefined);
    if (failure) throw failure;
    const bytesOf = (list: Prefetch[]) => list.reduce((sum, prefetch) => sum + prefetch.bytes, 0);
    return {
      waitedMs,
      numAwaited: awaited.length,
      numLanded: landed.length,
      bytesAwaited: bytesOf(awaited),
      bytesLanded: bytesOf(landed),
    };
  }

  /** Issue -> landed spans of the prefetches that completed since the last call. */
  takeCompleted(): PrefetchSpan[] {
    const completed = this.completed;
    this.completed = [];
    return completed;
  }

  /** Summed issue -> done time of the prefetches that completed since the last call, ms. */
  takeCompletedMs(): number {
    return this.takeCompleted().reduce((sum, span) => sum + span.landedMs - span.issuedMs, 0);
  }

  /** Resolves once every prefetch in flight has settled (failures stay recorded for their step). */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight.values()].map((prefetch) => prefetch.outcome));
  }
}
