import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { randomInt } from '../test/test-support.ts';
import { HostKvAllocator } from './host-kv-allocator.ts';

const SLOT_BYTES = 4096;

function allocator(numSlots: number, tokensPerSlot = 16): HostKvAllocator {
  return new HostKvAllocator({ numSlots, tokensPerSlot, slotBytes: SLOT_BYTES });
}

describe('HostKvAllocator', () => {
  it('sizes itself from a byte capacity and reports bytes', () => {
    const a = HostKvAllocator.forCapacity(10 * SLOT_BYTES + 100, 16, SLOT_BYTES);
    expect(a.numSlots).toBe(10);
    expect(a.numBytes).toBe(10 * SLOT_BYTES);
    a.reserve(1, 3);
    expect(a.numUsedBytes).toBe(3 * SLOT_BYTES);
    expect(a.numFreeBytes).toBe(7 * SLOT_BYTES);
  });

  it('fills to the last slot, then refuses without changing anything', () => {
    const a = allocator(8);
    const first = a.reserve(1, 5);
    const second = a.reserve(2, 3);
    expect(first.ok && second.ok).toBe(true);
    const all = [...(first.ok ? first.slotIds : []), ...(second.ok ? second.slotIds : [])];
    expect(new Set(all).size).toBe(8);
    expect(a.numFreeSlots).toBe(0);
    const failed = a.reserve(3, 1);
    expect(failed).toEqual({ ok: false, reason: 'wanted 1 slots, only 0 free' });
    expect(a.numSequences).toBe(2);
    expect(a.slotsOf(3)).toEqual([]);
    // A request larger than what is free takes nothing, even when some slots are free.
    a.release(2);
    expect(a.reserve(4, 4).ok).toBe(false);
    expect(a.numFreeSlots).toBe(3);
    expect(a.canReserve(3)).toBe(true);
    expect(a.canReserve(3, 1)).toBe(false);
  });

  it('appends to a sequence in token order and grows by tokens', () => {
    const a = allocator(10, 16);
    const r1 = a.reserveTokens(7, 20); // 2 slots
    expect(r1.ok && r1.slotIds.length).toBe(2);
    const r2 = a.reserveTokens(7, 33); // 3 slots in all: one more
    expect(r2.ok && r2.slotIds.length).toBe(1);
    const r3 = a.reserveTokens(7, 40); // still 3
    expect(r3.ok && r3.slotIds.length).toBe(0);
    const ids = [...(r1.ok ? r1.slotIds : []), ...(r2.ok ? r2.slotIds : [])];
    expect(a.slotsOf(7)).toEqual(ids);
    expect(a.tokenCapacityOf(7)).toBe(48);
    for (const id of ids) expect(a.ownerOfSlot(id)).toBe(7);
  });

  it('releases some or all slots; bad releases change nothing', () => {
    const a = allocator(6);
    const r = a.reserve(1, 4);
    if (!r.ok) throw new Error(r.reason);
    a.reserve(2, 2);
    const [s0, s1, s2, s3] = r.slotIds as [number, number, number, number];
    expect(a.release(1, [s1, s1])).toEqual({ ok: false, reason: `slot ${s1} released twice` });
    const other = a.slotsOf(2)[0]!;
    expect(a.release(1, [s0, other]).ok).toBe(false);
    expect(a.release(1, [99]).ok).toBe(false);
    expect(a.release(5).ok).toBe(false);
    expect(a.slotsOf(1)).toEqual([s0, s1, s2, s3]);
    expect(a.numFreeSlots).toBe(0);

    expect(a.release(1, [s1])).toEqual({ ok: true, numReleased: 1 });
    expect(a.slotsOf(1)).toEqual([s0, s2, s3]);
    expect(a.ownerOfSlot(s1)).toBeUndefined();
    expect(a.release(1)).toEqual({ ok: true, numReleased: 3 });
    expect(a.numSequences).toBe(1);
    expect(a.numFreeSlots).toBe(4);
    // Freed slots are reused.
    const again = a.reserve(3, 4);
    expect(again.ok && [...again.slotIds].sort()).toEqual([s0, s1, s2, s3].sort());
  });

  it('has no external fragmentation: interleaved frees still satisfy one big reserve', () => {
    const a = allocator(64, 16);
    const rng = new Xoshiro128(5);
    const lengths = new Map<number, number>();
    // 16 sequences of random lengths, allocated round-robin one slot at a time so their
    // slots interleave across the id space.
    for (let seq = 0; seq < 16; seq++) lengths.set(seq, 1 + randomInt(rng, 60));
    let isGrowing = true;
    while (isGrowing) {
      isGrowing = false;
      for (const [seq, tokens] of lengths) {
        if (a.tokenCapacityOf(seq) < tokens && a.canReserve(1)) {
          expect(a.reserve(seq, 1).ok).toBe(true);
          isGrowing = true;
        }
      }
    }
    // Internal waste: under one slot of tokens per sequence that got all it asked for.
    for (const [seq, tokens] of lengths) {
      const capacity = a.tokenCapacityOf(seq);
      if (capacity >= tokens) expect(capacity - tokens).toBeLessThan(16);
    }
    for (let seq = 0; seq < 16; seq += 2) if (a.slotsOf(seq).length) a.release(seq);
    const free = a.numFreeSlots;
    const big = a.reserve(100, free);
    expect(big.ok).toBe(true);
    if (big.ok) {
      const sorted = [...big.slotIds].sort((x, y) => x - y);
      // The granted ids are scattered (not one run), yet the request succeeded.
      expect(sorted.at(-1)! - sorted[0]! + 1).toBeGreaterThan(free);
    }
    expect(a.numFreeSlots).toBe(0);
  });

  it('matches a simple model over random reserve/release sequences', () => {
    const rng = new Xoshiro128(11);
    const numSlots = 40;
    const a = allocator(numSlots);
    const model = new Map<number, number[]>();
    const used = () => [...model.values()].reduce((sum, ids) => sum + ids.length, 0);
    for (let op = 0; op < 3000; op++) {
      const seq = randomInt(rng, 12);
      if (rng.nextFloat() < 0.55) {
        const n = randomInt(rng, 8);
        const result = a.reserve(seq, n);
        expect(result.ok).toBe(n <= numSlots - used());
        if (result.ok && n > 0) model.set(seq, [...(model.get(seq) ?? []), ...result.slotIds]);
      } else {
        const owned = model.get(seq);
        const isPartial = rng.nextFloat() < 0.5 && owned !== undefined;
        const subset = isPartial ? owned.filter(() => rng.nextFloat() < 0.5) : undefined;
        const result = a.release(seq, subset);
        expect(result.ok).toBe(owned !== undefined);
        if (owned) {
          const left = subset ? owned.filter((id) => !subset.includes(id)) : [];
          if (left.length) model.set(seq, left);
          else model.delete(seq);
        }
      }
      expect(a.numUsedSlots).toBe(used());
      expect(a.numSequences).toBe(model.size);
    }
    const allOwned = [...model.values()].flat();
    expect(new Set(allOwned).size).toBe(allOwned.length);
    for (const [seq, ids] of model) {
      expect(a.slotsOf(seq)).toEqual(ids);
      for (const id of ids) expect(a.ownerOfSlot(id)).toBe(seq);
    }
  });
});
