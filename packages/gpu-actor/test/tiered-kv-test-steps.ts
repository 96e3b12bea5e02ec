import type { DeviceSamplingParams, StepBatch, StepResult } from '@seesaw/protocol';
import { expect } from 'vitest';
import { CpuDevice } from '../src/cpu-device.ts';

/**
 * Shared by the tiered-KV tests: one greedy sequence (id 1) prefilled and decoded step by step,
 * the same run on one in-process device where it never moves, and the check against that run.
 */

export const GREEDY: DeviceSamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };

/** Prompt tokens of sequence `offset`: deterministic, inside the fixture's 2048-token vocabulary. */
export function seqTokens(count: number, offset: number): number[] {
  return Array.from({ length: count }, (_, i) => 3 + ((i * 37 + offset * 101) % 2000));
}

/** A step adding sequence `seqId` and prefilling its `length`-token prompt. */
export function prefillStep(stepId: number, seqId: number, length: number, blockTable: number[]): StepBatch {
  return {
    stepId,
    addedSeqs: [{ seqId, sampling: GREEDY }],
    releasedSeqIds: [],
    seqs: [
      { seqId, tokenIds: seqTokens(length, seqId), startPos: 0, blockTable, isSampled: true, outputIndex: 0 },
    ],
  };
}

/** The step producing output `outputIndex` of sequence 1 (prompt of `promptLength`) from `token`. */
export function decodeStep(
  stepId: number,
  promptLength: number,
  token: number,
  outputIndex: number,
  blockTable: number[],
): StepBatch {
  return {
    stepId,
    addedSeqs: [],
    releasedSeqIds: [],
    isLogitsReturned: true,
    seqs: [
      {
        seqId: 1,
        tokenIds: [token],
        startPos: promptLength + outputIndex - 1,
        blockTable,
        isSampled: true,
        outputIndex,
      },
    ],
  };
}

/** Sequence 1's prefill and `numDecodes` decodes on one in-process device, in `blocks` throughout. */
export async function referenceRun(
  modelDir: string,
  blockSize: number,
  promptLength: number,
  numDecodes: number,
  blocks: number[],
): Promise<StepResult[]> {
  const device = await CpuDevice.load(modelDir, { blockSize, kvCacheBytes: 4 << 20 });
  const results = [await device.execute(prefillStep(0, 1, promptLength, blocks))];
  for (let i = 1; i <= numDecodes; i++) {
    const token = results[i - 1]!.sampled[0]!.tokenId;
    results.push(await device.execute(decodeStep(i, promptLength, token, i, blocks)));
  }
  device.close();
  return results;
}

/** max |actual - expected| / max |expected|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / maxRef;
}

/**
 * Checks a step's result for output `outputIndex` against the reference run: the same sampled
 * tokens, and (decodes return logits) logits within `relativeTolerance`.
 */
export function referenceCheck(
  expected: readonly StepResult[],
  relativeTolerance: number,
): (result: StepResult, outputIndex: number) => void {
  return (result, outputIndex) => {
    expect(result.sampled, `output ${outputIndex}`).toEqual(expected[outputIndex]!.sampled);
    if (outputIndex > 0)
      expect(relativeError(result.logits![0]!, expected[outputIndex]!.logits![0]!)).toBeLessThan(
        relativeTolerance,
      );
  };
}
