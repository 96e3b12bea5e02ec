import type { StepBatch, StepSeq } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingPhasedDevice } from './hashing-phased-device.ts';
import { HashingTestDevice } from './hashing-test-device.ts';

const SAMPLING = { temperature: 0, topP: 1, topK: 0, seed: 1 };

function row(
  seqId: number,
  tokenIds: number[],
  startPos: number,
  blockTable: number[],
  isSampled = true,
): StepSeq {
  return { seqId, tokenIds, startPos, blockTable, isSampled, outputIndex: 0 };
}

function batch(stepId: number, seqs: StepSeq[], extra: Partial<StepBatch> = {}): StepBatch {
  return { stepId, addedSeqs: [], releasedSeqIds: [], seqs, ...extra };
}

const added = (...seqIds: number[]) => seqIds.map((seqId) => ({ seqId, sampling: SAMPLING }));

describe('HashingTestDevice write-backs and prefetches', () => {
  it('a sequence written back, released and prefetched into other blocks samples as if it never left', async () => {
    const prompt = [5, 6, 7, 8, 9];
    const stay = new HashingTestDevice({ numKvBlocks: 8, blockSize: 4, vocabSize: 50 });
    const first = await stay.execute(batch(0, [row(0, prompt, 0, [0, 1])], { addedSeqs: added(0) }));
    const t0 = first.sampled[0].tokenId;
    const second = await stay.execute(batch(1, [row(0, [t0], 5, [0, 1])]));

    const moved = new HashingTestDevice({
      numKvBlocks: 8,
      blockSize: 4,
      vocabSize: 50,
      numHostSlots: 4,
      kvMsPerToken: 1,
    });
    const writeBack = { seqId: 0, blockIds: [0, 1], slotIds: [3, 1], numTokens: 5 };
    const a = await moved.execute(
      batch(0, [row(0, prompt, 0, [0, 1])], { addedSeqs: added(0), kvWriteBacks: [writeBack] }),
    );
    expect(a.sampled[0].tokenId).toBe(t0);
    expect(a.kvTimings).toEqual({
      computeMs: 0,
      prefetchWaitMs: 0,
      prefetchMs: 0,
      writeBackMs: 5,
      writeBackWaitMs: 0,
    });
    // Another sequence runs meanwhile and reuses blocks 0 and 1.
    const b = await moved.execute(
      batch(1, [row(1, [1, 2, 3, 4, 5, 6], 0, [1, 0])], { releasedSeqIds: [0], addedSeqs: added(1) }),
    );
    const prefetch = { seqId: 0, blockIds: [6, 2], slotIds: [3, 1], numTokens: 5 };
    const c = await moved.execute(
      batch(2, [row(1, [b.sampled[0].tokenId], 6, [1, 0])], { addedSeqs: added(0), prefetches: [prefetch] }),
    );
    expect(c.kvTimings?.prefetchMs).toBe(5);
    const d = await moved.execute(batch(3, [row(0, [t0], 5, [6, 2])]));
    expect(d.sampled[0].tokenId).toBe(second.sampled[0].tokenId);
    expect(moved.numWriteBacks).toBe(1);
    expect(moved.numPrefetches).toBe(1);
  });

  it('throws on a write-back of other than the computed positions, and a prefetch into a row of its own step', async () => {
    const d = new HashingTestDevice({ numKvBlocks: 8, blockSize: 4, vocabSize: 50, numHostSlots: 4 });
    const bad = { seqId: 0, blockIds: [0, 1], slotIds: [0, 1], numTokens: 6 };
    await expect(
      d.execute(batch(0, [row(0, [1, 2, 3, 4, 5], 0, [0, 1])], { addedSeqs: added(0), kvWriteBacks: [bad] })),
    ).rejects.toThrow(/write-back of seq 0: 6 tokens, but 5 are cached/);

    const e = new HashingTestDevice({ numKvBlocks: 8, blockSize: 4, vocabSize: 50, numHostSlots: 4 });
    const wb = { seqId: 0, blockIds: [0], slotIds: [2], numTokens: 3 };
    await e.execute(batch(0, [row(0, [1, 2, 3], 0, [0])], { addedSeqs: added(0), kvWriteBacks: [wb] }));
    const prefetch = { seqId: 0, blockIds: [4], slotIds: [2], numTokens: 3 };
    await expect(
      e.execute(
        batch(1, [row(0, [9], 3, [4])], { releasedSeqIds: [0], addedSeqs: added(0), prefetches: [prefetch] }),
      ),
    ).rejects.toThrow(/computes in the step that prefetches it/);
  });
});

describe('HashingPhasedDevice', () => {
  const options = { blockSize: 4, vocabSize: 50, numHostSlots: 8, numKvBlocks: { prefill: 6, decode: 9 } };

  it('drops all device KV at a switch: a sequence not re-added after it cannot compute', async () => {
    const device = new HashingPhasedDevice(options);
    expect([device.phase, device.numKvBlocks, device.maxInFlight]).toEqual(['prefill', 6, 1]);
    await device.execute(batch(0, [row(0, [1, 2, 3], 0, [0])], { addedSeqs: added(0) }));
    const stats = await device.switchTo('decode');
    expect(stats.numKvBlocks).toBe(9);
    expect([device.phase, device.numKvBlocks]).toEqual(['decode', 9]);
    await expect(device.execute(batch(1, [row(0, [4], 3, [0])]))).rejects.toThrow(
      /seq 0 computes after a phase switch dropped its KV/,
    );
    // Releasing it is fine; re-added, it starts from nothing.
    await device.execute(
      batch(2, [row(0, [1, 2, 3, 4], 0, [8])], { releasedSeqIds: [0], addedSeqs: added(0) }),
    );
    expect(device.switches).toEqual(['decode']);
  });

  it('refuses a switch with steps pending and more steps than the layout takes', async () => {
    const device = new HashingPhasedDevice({ ...options, maxInFlight: { prefill: 2 } });
    const a = device.execute(batch(0, [row(0, [1], 0, [0])], { addedSeqs: added(0) }));
    const b = device.execute(batch(1, [row(1, [1], 0, [1])], { addedSeqs: added(1) }));
    const third = device.execute(batch(2, [row(2, [1], 0, [2])], { addedSeqs: added(2) }));
    const early = device.switchTo('decode');
    await expect(third).rejects.toThrow(/2 steps pending, the prefill layout takes 2/);
    await expect(early).rejects.toThrow(/switch to decode with 2 steps pending/);
    await Promise.all([a, b]);
    await expect(device.switchTo('prefill')).rejects.toThrow(/already in the prefill layout/);
    await device.switchTo('decode');
    expect(device.maxInFlight).toBe(1);
  });
});
