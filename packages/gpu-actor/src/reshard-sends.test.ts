import type { PieceSend, TensorSlice } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { HeldWeights } from './held-weights.ts';
import { PendingUnitFrees } from './pending-unit-frees.ts';
import { ReshardSends } from './reshard-sends.ts';

// Four [2][16] bf16 tensors held whole in shared memory (64 bytes each), t0..t2 sent whole (read
// in place), half of t3's columns sent cut; each in its own unit.
const SHAPE = [2, 16];
const rows = (name: string): TensorSlice => ({ name, axis: 'rows', start: 0, end: 2 });

function heldInSharedMemory(): HeldWeights {
  const held = new HeldWeights();
  const memory = new Uint8Array(new SharedArrayBuffer(4 * 64));
  for (let i = 0; i < memory.length; i++) memory[i] = i;
  ['t0', 't1', 't2', 't3'].forEach((name, i) => {
    held.hold(rows(name), i + 1, 'BF16', SHAPE, memory.subarray(i * 64, (i + 1) * 64));
  });
  return held;
}

interface Posted {
  name: string;
  bytes: Uint8Array;
  take: () => void;
}

function recordingIo(posted: Posted[]) {
  return {
    send(_to: number, slice: TensorSlice, bytes: Uint8Array): Promise<void> {
      let take!: () => void;
      const receipt = new Promise<void>((resolve) => {
        take = resolve;
      });
      posted.push({ name: `${slice.name} ${slice.axis}`, bytes: bytes.slice(), take });
      return receipt;
    },
  };
}

describe('ReshardSends', () => {
  it('posts in-place pieces early up to the per-peer allowance, every piece by its unit, cut pieces two units ahead', async () => {
    const posted: Posted[] = [];
    const sends: PieceSend[] = [
      { to: 1, slice: rows('t0'), bytes: 64, unit: 1 },
      { to: 1, slice: rows('t1'), bytes: 64, unit: 2 },
      { to: 1, slice: rows('t2'), bytes: 64, unit: 3 },
      { to: 1, slice: { name: 't3', axis: 'columns', start: 0, end: 8 }, bytes: 32, unit: 4 },
    ];
    const held = heldInSharedMemory();
    const frees = new PendingUnitFrees(() => {});
    const poster = new ReshardSends(sends, held, recordingIo(posted), frees, undefined, 100);
    poster.postFor(-1);
    expect(posted.map((p) => p.name)).toEqual(['t0 rows']); // t1 would make 128 > 100 bytes awaited
    posted[0]!.take();
    await new Promise((resolve) => setImmediate(resolve));
    poster.postFor(0);
    expect(posted.map((p) => p.name)).toEqual(['t0 rows', 't1 rows']);
    poster.postFor(2); // the cut piece of unit 4 goes two units ahead; t2 still waits for room
    expect(posted.map((p) => p.name)).toEqual(['t0 rows', 't1 rows', 't3 columns']);
    poster.postFor(3); // due now, whatever the allowance
    expect(posted.map((p) => p.name)).toEqual(['t0 rows', 't1 rows', 't3 columns', 't2 rows']);
    expect(poster.bytesSent).toBe(3 * 64 + 32);
    // In-place pieces are views of the held bytes; the cut one is each row's first 8 values.
    expect(posted[3]!.bytes).toEqual(held.extract(rows('t2')));
    const t3 = held.extract(rows('t3'));
    expect(posted[2]!.bytes).toEqual(new Uint8Array([...t3.subarray(0, 16), ...t3.subarray(32, 48)]));
  });
});
