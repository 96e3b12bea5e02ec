import { describe, expect, it } from 'vitest';
import { bitsEqual, concatFloats, randomFloats, referenceSum } from '../test/collective-test-support.ts';
import { InProcessGroup } from './in-process-group.ts';

/** Lets other tasks run for a rank-dependent number of turns, to vary arrival order. */
async function yieldTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe('InProcessGroup', () => {
  it('sums by the halving tree over ranks and gathers uneven parts, bit-identically on every rank, over back-to-back ops', async () => {
    const size = 3;
    const group = InProcessGroup.create(size);
    const lengths = [1, 17, 0, 1000];
    const inputs = lengths.map((n, op) =>
      Array.from({ length: size }, (_, r) => randomFloats(n, 100 * op + r + 1)),
    );
    const gatherParts = Array.from({ length: size }, (_, r) => randomFloats(5 + 3 * r, 77 + r));
    const gatherLength = gatherParts.reduce((n, p) => n + p.length, 0);
    const results = await Promise.all(
      group.map(async (member, r) => {
        const reduced: Float32Array[] = [];
        for (const [op, perRank] of inputs.entries()) {
          await yieldTurns((r * 7 + op * 3) % 5);
          const buf = perRank[r].slice();
          await member.allReduceSum(buf);
          reduced.push(buf);
        }
        const gathered = new Float32Array(gatherLength);
        await member.allGather(gatherParts[r], gathered);
        return { reduced, gathered };
      }),
    );
    const expectedGather = concatFloats(gatherParts);
    for (const { reduced, gathered } of results) {
      for (const [op, buf] of reduced.entries()) expect(bitsEqual(buf, referenceSum(inputs[op]))).toBe(true);
      expect(bitsEqual(gathered, expectedGather)).toBe(true);
    }
  });

  it('rejects mismatched collectives on every rank and stays failed', async () => {
    const [a, b] = InProcessGroup.create(2);
    const outcomes = await Promise.allSettled([
      a.allReduceSum(new Float32Array(4)),
      b.allGather(new Float32Array(4), new Float32Array(8)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(
      /called allGather, another rank allReduceSum/,
    );
    await expect(a.allReduceSum(new Float32Array(1))).rejects.toThrow(/called allGather/);
  });

  it('rejects unequal reduce lengths and wrong gather sizes, and abort() frees waiting ranks', async () => {
    const [a, b] = InProcessGroup.create(2);
    const outcomes = await Promise.allSettled([
      a.allReduceSum(new Float32Array(3)),
      b.allReduceSum(new Float32Array(4)),
    ]);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(
      /rank 1 has 4 floats, rank 0 has 3/,
    );

    const [c, d] = InProcessGroup.create(2);
    const gathers = await Promise.allSettled([
      c.allGather(new Float32Array(2), new Float32Array(5)),
      d.allGather(new Float32Array(2), new Float32Array(4)),
    ]);
    expect(gathers[0].status).toBe('rejected');
    expect(gathers[1].status).toBe('fulfilled');

    const [e] = InProcessGroup.create(2);
    const waiting = e.allReduceSum(new Float32Array(2));
    e.abort(new Error('rank 1 died'));
    await expect(waiting).rejects.toThrow(/rank 1 died/);
  });
});
