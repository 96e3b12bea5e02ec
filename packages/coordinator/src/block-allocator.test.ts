import { describe, expect, it } from 'vitest';
import { BlockAllocator } from './block-allocator.ts';

describe('BlockAllocator', () => {
  it('hands out distinct ids in ascending order from a fresh pool and counts them', () => {
    const allocator = new BlockAllocator(5);
    expect(allocator.numFreeBlocks).toBe(5);
    expect(allocator.allocate(3)).toEqual([0, 1, 2]);
    expect(allocator.numFreeBlocks).toBe(2);
    expect(allocator.numUsedBlocks).toBe(3);
    expect(allocator.isAllocated(1)).toBe(true);
    expect(allocator.isAllocated(3)).toBe(false);
    expect(allocator.allocate(0)).toEqual([]);
  });

  it('checks capacity with a reserve', () => {
    const allocator = new BlockAllocator(10);
    allocator.allocate(4);
    expect(allocator.canAllocate(6)).toBe(true);
    expect(allocator.canAllocate(7)).toBe(false);
    expect(allocator.canAllocate(4, 2)).toBe(true);
    expect(allocator.canAllocate(5, 2)).toBe(false);
    expect(() => allocator.allocate(7)).toThrow(/cannot allocate 7/);
    expect(allocator.numFreeBlocks).toBe(6);
  });

  it('reuses freed blocks first, in the order the owner held them', () => {
    const allocator = new BlockAllocator(8);
    const a = allocator.allocate(3);
    allocator.allocate(2);
    allocator.free(a);
    expect(allocator.numFreeBlocks).toBe(6);
    expect(allocator.allocate(2)).toEqual([0, 1]);
  });

  it('rejects double frees, duplicate and unknown ids without changing the accounting', () => {
    const allocator = new BlockAllocator(4);
    const ids = allocator.allocate(2);
    expect(() => allocator.free([ids[0], ids[0]])).toThrow(/twice/);
    expect(() => allocator.free([ids[0], 9])).toThrow(/bad block id/);
    expect(allocator.numFreeBlocks).toBe(2);
    allocator.free(ids);
    expect(() => allocator.free([ids[1]])).toThrow(/twice/);
    expect(allocator.numFreeBlocks).toBe(4);
  });

  it('never hands out an id twice under random allocate/free traffic', () => {
    let state = 12345;
    const random = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const allocator = new BlockAllocator(64);
    const held: number[][] = [];
    const owned = new Set<number>();
    for (let round = 0; round < 2000; round++) {
      if (held.length > 0 && random() < 0.45) {
        const [ids] = held.splice(Math.floor(random() * held.length), 1);
        allocator.free(ids);
        for (const id of ids) owned.delete(id);
      } else {
        const count = Math.floor(random() * 6);
        if (!allocator.canAllocate(count)) continue;
        const ids = allocator.allocate(count);
        for (const id of ids) {
          expect(owned.has(id)).toBe(false);
          owned.add(id);
        }
        held.push(ids);
      }
      expect(allocator.numUsedBlocks).toBe(owned.size);
    }
  });

  it('rejects a bad pool size', () => {
    expect(() => new BlockAllocator(0)).toThrow(RangeError);
    expect(() => new BlockAllocator(2.5)).toThrow(RangeError);
  });
});
