import { describe, expect, it } from 'vitest';
import { PendingUnitFrees } from './pending-unit-frees.ts';

/** A receipt the test answers by hand. */
function receipt(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('PendingUnitFrees', () => {
  it('frees a unit no peer reads at once, and one peers read only when all its receipts are in', async () => {
    const freed: number[] = [];
    const frees = new PendingUnitFrees((unit) => freed.push(unit));
    const [a, b] = [receipt(), receipt()];
    frees.addReceipt(3, a.promise);
    frees.addReceipt(3, b.promise);
    frees.release(2);
    frees.release(3);
    expect(freed).toEqual([2]);
    a.resolve();
    await tick();
    frees.freeSettled();
    expect(freed).toEqual([2]);
    expect(frees.numWaiting).toBe(1);
    b.resolve();
    await tick();
    frees.freeSettled();
    expect(freed).toEqual([2, 3]);
    expect(frees.numWaiting).toBe(0);
  });

  it('freeSettled frees whichever units are done, freeOldest awaits the oldest, freeAll the rest', async () => {
    const freed: number[] = [];
    const frees = new PendingUnitFrees((unit) => freed.push(unit));
    const receipts = [receipt(), receipt(), receipt()];
    receipts.forEach((r, unit) => {
      frees.addReceipt(unit, r.promise);
      frees.release(unit);
    });
    receipts[1]!.resolve();
    await tick();
    frees.freeSettled();
    expect(freed).toEqual([1]);
    const oldest = frees.freeOldest();
    await tick();
    expect(freed).toEqual([1]); // still waiting for unit 0's receipt
    receipts[0]!.resolve();
    expect(await oldest).toBe(true);
    expect(freed).toEqual([1, 0]);
    const all = frees.freeAll();
    receipts[2]!.resolve();
    await all;
    expect(freed).toEqual([1, 0, 2]);
    expect(await frees.freeOldest()).toBe(false);
  });

  it('never frees a unit whose receipt failed, and throws that failure where the unit is awaited', async () => {
    const freed: number[] = [];
    const frees = new PendingUnitFrees((unit) => freed.push(unit));
    const failed = receipt();
    frees.addReceipt(5, failed.promise);
    frees.release(5);
    failed.reject(new Error('link to device 1 is closed: gone'));
    await tick();
    frees.freeSettled();
    expect(freed).toEqual([]);
    await expect(frees.freeAll()).rejects.toThrow(/link to device 1 is closed/);
    expect(freed).toEqual([]);
  });
});
