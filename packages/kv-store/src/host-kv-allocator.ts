/**
 * Accounting for one host's KV slots: which slot ids are free and which sequence owns which,
 * in the order its tokens use them. It owns no memory (HostKvStore maps slot ids to bytes),
 * so the scheduler and the simulator can drive the same accounting without any storage.
 *
 * A slot holds `tokensPerSlot` consecutive tokens of one sequence over every layer and KV
 * head the host stores. All slots are the same size, so any free slot fits any request:
 * there is no external fragmentation, and internal waste is under one slot per sequence.
 */

export type ReserveResult = { ok: true; slotIds: number[] } | { ok: false; reason: string };
export type ReleaseResult = { ok: true; numReleased: number } | { ok: false; reason: string };

export interface HostKvAllocatorOptions {
  numSlots: number;
  /** Tokens one slot holds (the device's block size, typically 16). */
  tokensPerSlot: number;
  /** Bytes one slot takes; only used for the byte figures. */
  slotBytes: number;
}

export class HostKvAllocator {
  readonly numSlots: number;
  readonly tokensPerSlot: number;
  readonly slotBytes: number;
  // A stack of free ids: the most recently freed slot is handed out first (its memory is
  // likely still warm); the initial order hands out low ids first.
  private readonly freeIds: number[] = [];
  /** Owner sequence per slot, -1 when free. */
  private readonly ownerOf: Float64Array;
  private readonly slotsBySeq = new Map<number, number[]>();

  constructor(options: HostKvAllocatorOptions) {
    const { numSlots, tokensPerSlot, slotBytes } = options;
    if (!Number.isInteger(numSlots) || numSlots < 0) throw new RangeError(`bad numSlots ${numSlots}`);
    if (!Number.isInteger(tokensPerSlot) || tokensPerSlot < 1)
      throw new RangeError(`bad tokensPerSlot ${tokensPerSlot}`);
    if (!Number.isInteger(slotBytes) || slotBytes < 1) throw new RangeError(`bad slotBytes ${slotBytes}`);
    this.numSlots = numSlots;
    this.tokensPerSlot = tokensPerSlot;
    this.slotBytes = slotBytes;
    this.ownerOf = new Float64Array(numSlots).fill(-1);
    for (let id = numSlots - 1; id >= 0; id--) this.freeIds.push(id);
  }

  /** An allocator for as many slots as fit in `capacityBytes`. */
  static forCapacity(capacityBytes: number, tokensPerSlot: number, slotBytes: number): HostKvAllocator {
    return new HostKvAllocator({ numSlots: Math.floor(capacityBytes / slotBytes), tokensPerSlot, slotBytes });
  }

  get numFreeSlots(): number {
    return this.freeIds.length;
  }

  get numUsedSlots(): number {
    return this.numSlots - this.freeIds.length;
  }

  get numBytes(): number {
    return this.numSlots * this.slotBytes;
  }

  get numUsedBytes(): number {
    return this.numUsedSlots * this.slotBytes;
  }

  get numFreeBytes(): number {
    return this.freeIds.length * this.slotBytes;
  }

  /** Sequences holding at least one slot. */
  get numSequences(): number {
    return this.slotsBySeq.size;
  }

  /** Slots needed for `numTokens` tokens. */
  slotsForTokens(numTokens: number): number {
    return Math.ceil(numTokens / this.tokensPerSlot);
  }

  /** Whether `numSlots` slots can be taken while leaving at least `numKeptFree` free. */
  canReserve(numSlots: number, numKeptFree = 0): boolean {
    return this.freeIds.length - numSlots >= numKeptFree;
  }

  /**
   * Appends `numSlots` slots to the sequence's list (a new sequence starts one). All or
   * nothing: on failure nothing changes.
   */
  reserve(seqId: number, numSlots: number): ReserveResult {
    if (!isId(seqId)) return { ok: false, reason: `bad seqId ${seqId}` };
    if (!Number.isInteger(numSlots) || numSlots < 0)
      return { ok: false, reason: `bad slot count ${numSlots}` };
    if (numSlots > this.freeIds.length) {
      return { ok: false, reason: `wanted ${numSlots} slots, only ${this.freeIds.length} free` };
    }
    const slotIds = this.freeIds.splice(this.freeIds.length - numSlots, numSlots).reverse();
    for (const id of slotIds) this.ownerOf[id] = seqId;
    const owned = this.slotsBySeq.get(seqId);
    if (owned) owned.push(...slotIds);
    else if (numSlots > 0) this.slotsBySeq.set(seqId, slotIds.slice());
    return { ok: true, slotIds };
  }

  /** Grows the sequence to cover `numTokens` tokens in all (reserves only what is missing). */
  reserveTokens(seqId: number, numTokens: number): ReserveResult {
    if (!Number.isInteger(numTokens) || numTokens < 0)
      return { ok: false, reason: `bad token count ${numTokens}` };
    const missing = this.slotsForTokens(numTokens) - (this.slotsBySeq.get(seqId)?.length ?? 0);
    return this.reserve(seqId, Math.max(0, missing));
  }

  /**
   * Frees some of a sequence's slots (the rest keep their order, so token positions past a
   * released slot move down) or, without `slotIds`, all of them. All or nothing: an id the
   * sequence does not own, or a repeated id, fails the whole call.
   */
  release(seqId: number, slotIds?: readonly number[]): ReleaseResult {
    const owned = this.slotsBySeq.get(seqId);
    if (!owned) return { ok: false, reason: `sequence ${seqId} holds no slots` };
    const toFree = slotIds ?? owned;
    const seen = new Set<number>();
    for (const id of toFree) {
      if (!Number.isInteger(id) || id < 0 || id >= this.numSlots)
        return { ok: false, reason: `bad slot id ${id}` };
      if (this.ownerOf[id] !== seqId)
        return { ok: false, reason: `slot ${id} is not held by sequence ${seqId}` };
      if (seen.has(id)) return { ok: false, reason: `slot ${id} released twice` };
      seen.add(id);
    }
    // Push in reverse so the sequence's first slot is handed out again first.
    const freed = [...toFree];
    for (let i = freed.length - 1; i >= 0; i--) {
      this.ownerOf[freed[i]!] = -1;
      this.freeIds.push(freed[i]!);
    }
    const remaining = owned.filter((id) => !seen.has(id));
    if (remaining.length) this.slotsBySeq.set(seqId, remaining);
    else this.slotsBySeq.delete(seqId);
    return { ok: true, numReleased: freed.length };
  }

  /** The sequence's slots in token order (empty when it holds none). */
  slotsOf(seqId: number): readonly number[] {
    return this.slotsBySeq.get(seqId) ?? [];
  }

  /** Tokens the sequence's slots can hold. */
  tokenCapacityOf(seqId: number): number {
    return this.slotsOf(seqId).length * this.tokensPerSlot;
  }

  /** Sequence owning `slotId`, or undefined when free or out of range. */
  ownerOfSlot(slotId: number): number | undefined {
    if (!Number.isInteger(slotId) || slotId < 0 || slotId >= this.numSlots) return undefined;
    const owner = this.ownerOf[slotId]!;
    return owner < 0 ? undefined : owner;
  }

  sequenceIds(): number[] {
    return [...this.slotsBySeq.keys()];
  }
}

function isId(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
