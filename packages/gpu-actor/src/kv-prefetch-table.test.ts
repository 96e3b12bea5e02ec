import { describe, expect, it } from 'vitest';
import { KvPrefetchTable } from './kv-prefetch-table.ts';

/** A fetch the test lands by hand, resolving with the bytes it "moved". */
function manualFetch(bytes: number): { fetch: () => Promise<number>; land: () => void } {
  let land: () => void = () => {};
  const landed = new Promise<void>((resolve) => {
    land = resolve;
  });
  return { fetch: () => landed.then(() => bytes), land };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('KvPrefetchTable', () => {
  it('counts as hidden only the prefetches that landed before the step waited, by sequence and bytes', async () => {
    const table = new KvPrefetchTable();
    const early = manualFetch(3000);
    const late = manualFetch(1000);
    const other = manualFetch(500);
    table.start(1, early.fetch);
    table.start(2, late.fetch);
    table.start(3, other.fetch);
    early.land();
    await settle();
    const waiting = table.wait([1, 2, 7]);
    late.land();
    const wait = await waiting;
    expect(wait).toMatchObject({ numAwaited: 2, numLanded: 1, bytesAwaited: 4000, bytesLanded: 3000 });
    // Sequence 3 was not needed: still in flight, counted when a step needs it.
    expect(table.size).toBe(1);
    other.land();
    await settle();
    expect(await table.wait([3])).toMatchObject({ numAwaited: 1, numLanded: 1, bytesLanded: 500 });
    expect(await table.wait([3])).toMatchObject({ numAwaited: 0, numLanded: 0 });
  });

  it('still fails the step that needed a failed prefetch', async () => {
    const table = new KvPrefetchTable();
    table.start(4, () => Promise.reject(new Error('kv-store gone')));
    await expect(table.wait([4])).rejects.toThrow('kv-store gone');
  });
});
