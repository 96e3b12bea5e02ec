import { join } from 'node:path';
import type { StepKvSwap, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import {
  decodeStep,
  GREEDY,
  prefillStep,
  referenceCheck,
  referenceRun,
} from '../test/tiered-kv-test-steps.ts';
import { WorkerReplica } from '../test/worker-replica-test-support.ts';

// Tiered KV through real device worker threads and a kv-store worker: a prompt written back layer
// by layer during its prefill, its blocks taken by another prompt, prefetched into other blocks by
// a later step, decoded, written back again by a decode step (its newest token included), brought
// back once more, decoded. Tokens equal, and logits are within the TP/PP tests' bound of, one
// in-process device on which the sequence never moved.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const BLOCK_SIZE = 8;
const PROMPT = 20; // 3 blocks, the last one partial
const NUM_DECODES = 4; // the context then fills all 3 blocks
const RELATIVE_TOLERANCE = 1e-4;
const FIRST_BLOCKS = [5, 2, 7];
const SECOND_BLOCKS = [0, 9, 4];
const THIRD_BLOCKS = [11, 3, 6];

function expectTimings(result: StepResult, has: { writeBack?: boolean }): void {
  const timings = result.kvTimings;
  if (!timings) throw new Error(`step ${result.stepId} has no kvTimings`);
  const { spans, ...durations } = timings;
  for (const value of Object.values(durations)) {
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeGreaterThanOrEqual(0);
  }
  // The device's own spans: compute among them, each ending after it starts.
  expect(spans?.some((span) => span.name === 'compute')).toBe(true);
  for (const span of spans ?? []) expect(span.endMs).toBeGreaterThanOrEqual(span.startMs);
  expect(timings.computeMs).toBeGreaterThan(0);
  if (has.writeBack) expect(timings.writeBackMs).toBeGreaterThan(0);
  expect(timings.writeBackWaitMs).toBeLessThanOrEqual(timings.writeBackMs + 1e-6);
}

async function runScenario(tp: number, pp: number, expected: StepResult[]): Promise<void> {
  const replica = await WorkerReplica.start({
    modelDir: FIXTURE,
    tp,
    pp,
    blockSize: BLOCK_SIZE,
    deviceMemoryBytes: 24 << 20,
    numHostSlots: 16,
  });
  try {
    let stepId = 0;
    const check = referenceCheck(expected, RELATIVE_TOLERANCE);
    const writeBack: StepKvSwap = { seqId: 1, blockIds: FIRST_BLOCKS, slotIds: [6, 1, 3], numTokens: PROMPT };
    const first = await replica.execute({
      ...prefillStep(stepId++, 1, PROMPT, FIRST_BLOCKS),
      kvWriteBacks: [writeBack],
    });
    check(first, 0);
    expectTimings(first, { writeBack: true });

    // Sequence 1 is parked; another prompt takes every block it had while it is prefetched elsewhere.
    const overwrite = prefillStep(stepId++, 2, 24, [7, 5, 2]);
    overwrite.releasedSeqIds = [1];
    overwrite.prefetches = [{ ...writeBack, blockIds: SECOND_BLOCKS }];
    expectTimings(await replica.execute(overwrite), {});

    let token = first.sampled[0]!.tokenId;
    for (let i = 1; i <= 3; i++) {
      const step = decodeStep(stepId++, PROMPT, token, i, SECOND_BLOCKS);
      if (i === 1) {
        step.addedSeqs = [{ seqId: 1, sampling: GREEDY }];
        step.releasedSeqIds = [2];
      }
      // The last decode before a switch writes back every computed token, this step's included.
      if (i === 3)
        step.kvWriteBacks = [
          { seqId: 1, blockIds: SECOND_BLOCKS, slotIds: [8, 15, 0], numTokens: PROMPT + 3 },
        ];
      const result = await replica.execute(step);
      check(result, i);
      if (i === 1) expect(result.kvTimings?.prefetchWaitMs).toBeGreaterThanOrEqual(0);
      if (i === 3) expectTimings(result, { writeBack: true });
      token = result.sampled[0]!.tokenId;
    }

    // Back from the host once more, into a third set of blocks, by a step with other work.
    const other = prefillStep(stepId++, 3, 9, [1, 10]);
    other.releasedSeqIds = [1];
    other.prefetches = [{ seqId: 1, blockIds: THIRD_BLOCKS, slotIds: [8, 15, 0], numTokens: PROMPT + 3 }];
    await replica.execute(other);
    for (let i = 4; i <= NUM_DECODES; i++) {
      const step = decodeStep(stepId++, PROMPT, token, i, THIRD_BLOCKS);
      if (i === 4) step.addedSeqs = [{ seqId: 1, sampling: GREEDY }];
      const result = await replica.execute(step);
      check(result, i);
      token = result.sampled[0]!.tokenId;
    }

    // A write-back to a slot the store does not have fails the step with the store's reason.
    const bad = prefillStep(stepId++, 4, 5, [8]);
    bad.kvWriteBacks = [{ seqId: 4, blockIds: [8], slotIds: [16], numTokens: 5 }];
    await expect(replica.execute(bad)).rejects.toThrow(
      /stepFailed: step \d+: tiered KV failed: write-back of sequence 4: kv-store: slot 16 is not one of the store's 16 slots/,
    );
  } finally {
    await replica.close();
  }
}

describe('tiered KV through device workers and a kv-store worker', () => {
  let expected: StepResult[] | undefined;
  const referenceOnce = async () => {
    expected ??= await referenceRun(FIXTURE, BLOCK_SIZE, PROMPT, NUM_DECODES, FIRST_BLOCKS);
    return expected;
  };

  for (const [name, tp, pp] of [
    ['D1T1P1', 1, 1],
    ['D1T2P1', 2, 1],
    ['D1T1P2', 1, 2],
  ] as const) {
    it(`${name}: a written-back, prefetched sequence decodes as if it never left`, async () => {
      await runScenario(tp, pp, await referenceOnce());
    }, 60_000);
  }
});
