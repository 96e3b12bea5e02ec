/**
 * The old weight units a re-shard is done with but a peer may still be reading: a piece sent in
 * place (out of the device's shared weight memory) must stay unchanged until the peer's receipt
 * comes. Instead of waiting for those receipts before it moves on to its next unit (which tied
 * every device to its peers' pace, unit by unit), the executor hands a finished unit here: it is
 * freed at once when no peer reads it, else once its last receipt is in, or sooner on demand
 * (`freeOldest`, awaiting its receipts) when the device needs the memory.
 */

interface WaitingUnit {
  unit: number;
  /** Resolves when every receipt of the unit is in; rejects with the first failed one. */
  receipts: Promise<void>;
  isSettled: boolean;
}

export class PendingUnitFrees {
  private readonly receiptsByUnit = new Map<number, Array<Promise<void>>>();
  /** Released units whose receipts are not all in yet, oldest first. */
  private readonly waiting: WaitingUnit[] = [];

  /** `free` gives old unit `unit`'s memory back (its slices and matrices). */
  constructor(private readonly free: (unit: number) => void) {}

  /** A peer reads a piece in place out of old unit `unit` until `receipt` resolves. */
  addReceipt(unit: number, receipt: Promise<void>): void {
    const receipts = this.receiptsByUnit.get(unit);
    if (receipts) receipts.push(receipt);
    else this.receiptsByUnit.set(unit, [receipt]);
  }

  /** This device no longer reads old unit `unit`: freed now if no peer reads it, else when they are done. */
  release(unit: number): void {
    const receipts = this.receiptsByUnit.get(unit);
    this.receiptsByUnit.delete(unit);
    if (!receipts) {
      this.free(unit);
      return;
    }
    const waiting: WaitingUnit = { unit, receipts: Promise.all(receipts).then(() => {}), isSettled: false };
    waiting.receipts.then(
      () => {
        waiting.isSettled = true;
      },
      () => {}, // a failed receipt is thrown where the unit is awaited (freeOldest, freeAll)
    );
    this.waiting.push(waiting);
  }

  /** Frees every released unit whose receipts are all in. */
  freeSettled(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const waiting = this.waiting[i]!;
      if (!waiting.isSettled) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.free(waiting.unit);
    }
  }

  /** Awaits the oldest released unit's receipts and frees it; false when no unit waits. */
  async freeOldest(): Promise<boolean> {
    const oldest = this.waiting[0];
    if (!oldest) return false;
    await oldest.receipts;
    const index = this.waiting.indexOf(oldest);
    if (index >= 0) {
      this.waiting.splice(index, 1);
      this.free(oldest.unit);
    }
    return true;
  }

  /** Awaits every released unit's receipts and frees them all. */
  async freeAll(): Promise<void> {
    while (await this.freeOldest()) {}
  }

  /** Released units still waiting for receipts. */
  get numWaiting(): number {
    return this.waiting.length;
  }
}
