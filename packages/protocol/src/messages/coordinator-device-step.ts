/**
 * The step family of the coordinator <-> device link: `step` drives one engine step, the device
 * answers `stepDone` (with logits tensors when asked) or, when it does not answer the step itself,
 * reports `stepKv`. Also the field checks for a StepBatch and its results.
 */

import { arrayOf, bool, type Check, count, finite, int, object, oneOf } from '../check.ts';
import type { DeviceSpan, SampledToken, StepBatch, StepKvSwap, StepKvTimings, StepResult } from '../step.ts';
import type { Tensor } from '../tensor.ts';
import { type MessageRule, stepId } from './schema.ts';

/** Run one engine step (see StepBatch: diffs against earlier steps). */
export interface Step {
  tag: 'step';
  /** The step's work. */
  batch: StepBatch;
}

/**
 * A step's result. Logits rows (when the batch asked for them) travel as tensors, one f32
 * [vocab] tensor per sampled entry in order; use stepDoneMessage / stepResultOf.
 */
export interface StepDone {
  tag: 'stepDone';
  /** StepBatch.stepId answered. */
  stepId: number;
  /** One entry per sampled StepSeq, in batch order. */
  sampled: SampledToken[];
  /** Whether one logits tensor per sampled entry is attached. */
  hasLogits: boolean;
  /** The answering device's KV transfer timings for this step (ms). */
  kvTimings?: StepKvTimings;
}

/**
 * A device that does not answer the step (an earlier pipeline stage, a TP rank other than 0)
 * reports its own KV timings for it, when StepBatch.isKvReported asks: an earlier stage once its
 * write-backs are acknowledged.
 */
export interface StepKv {
  tag: 'stepKv';
  stepId: number;
  kvTimings: StepKvTimings;
}

/** Splits a StepResult into a stepDone message and its out-of-band logits tensors. */
export function stepDoneMessage(result: StepResult): { message: StepDone; tensors: Tensor[] } {
  const logits = result.logits ?? [];
  const message: StepDone = {
    tag: 'stepDone',
    stepId: result.stepId,
    sampled: result.sampled,
    hasLogits: logits.length > 0,
  };
  if (result.kvTimings) message.kvTimings = result.kvTimings;
  return {
    message,
    tensors: logits.map((row) => ({ dtype: 'f32', shape: [row.length], data: row })),
  };
}

/** Rebuilds a StepResult; logits rows are views on the received frame (no copy). */
export function stepResultOf(message: StepDone, tensors: readonly Tensor[]): StepResult {
  const result: StepResult = { stepId: message.stepId, sampled: message.sampled };
  if (message.hasLogits) result.logits = tensors.map((t) => t.data as Float32Array);
  if (message.kvTimings) result.kvTimings = message.kvTimings;
  return result;
}

/** Sequence, block, slot and request ids; the swap and reshard messages use them too. */
export const id = count;
export const idList = arrayOf(count);
const tokenId = int(0, 0x7fff_ffff);

const sampling = object(
  {
    temperature: finite(0),
    topP: finite(Number.MIN_VALUE, 1),
    topK: int(-0x8000_0000, 0x7fff_ffff),
    seed: int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  },
  { presencePenalty: finite(-2, 2), frequencyPenalty: finite(-2, 2), numLogprobs: int(0, 20) },
);

/** A log probability: <= 0 (-Infinity for a token that cannot be drawn; NaN from NaN logits). */
const logprob: Check = (value, path) =>
  typeof value === 'number' && !(value > 0) ? undefined : `${path}: expected a log probability (<= 0)`;
export const sampledLogprobs = object({ logprob, top: arrayOf(object({ tokenId, logprob })) });
export const sampledToken = object({ seqId: id, tokenId }, { logprobs: sampledLogprobs });

const stepSeq = object({
  seqId: id,
  tokenIds: arrayOf(tokenId),
  startPos: count,
  blockTable: idList,
  isSampled: bool,
  outputIndex: count,
});

const kvSwapFields = object({
  seqId: id,
  blockIds: idList,
  slotIds: idList,
  numTokens: int(1, Number.MAX_SAFE_INTEGER),
});

/** A StepKvSwap: its fields, then one block and one host slot per started block of tokens. */
const kvSwap: Check = (value, path) => {
  const error = kvSwapFields(value, path);
  if (error) return error;
  const swap = value as StepKvSwap;
  if (swap.blockIds.length !== swap.slotIds.length)
    return `${path}: ${swap.blockIds.length} blockIds but ${swap.slotIds.length} slotIds`;
  // Block size is the device's; it is at least 1 and at most numTokens, so the count lies in [1, numTokens].
  if (swap.blockIds.length < 1 || swap.blockIds.length > swap.numTokens)
    return `${path}: ${swap.blockIds.length} blocks cannot hold exactly ${swap.numTokens} tokens`;
  return undefined;
};

export const stepBatch = object(
  {
    stepId,
    addedSeqs: arrayOf(
      object(
        { seqId: id, sampling },
        { outputHistory: object({ tokenIds: arrayOf(tokenId), nextPosition: count }) },
      ),
    ),
    releasedSeqIds: idList,
    seqs: arrayOf(stepSeq),
  },
  {
    isLogitsReturned: bool,
    swapOuts: arrayOf(kvSwap),
    swapIns: arrayOf(kvSwap),
    kvWriteBacks: arrayOf(kvSwap),
    prefetches: arrayOf(kvSwap),
    isKvReported: bool,
  },
);

const milliseconds = finite(0);
const deviceSpanFields = object({
  name: oneOf('compute', 'prefetch', 'prefetch wait', 'write-back', 'write-back wait'),
  startMs: finite(0),
  endMs: finite(0),
});
const deviceSpan: Check = (value, path) =>
  deviceSpanFields(value, path) ??
  ((value as DeviceSpan).endMs >= (value as DeviceSpan).startMs
    ? undefined
    : `${path}: ends before it starts`);
export const kvTimings = object(
  {
    computeMs: milliseconds,
    prefetchWaitMs: milliseconds,
    prefetchMs: milliseconds,
    writeBackMs: milliseconds,
    writeBackWaitMs: milliseconds,
  },
  {
    prefetchesNeeded: count,
    prefetchesLanded: count,
    prefetchBytesNeeded: count,
    prefetchBytesLanded: count,
    spans: arrayOf(deviceSpan),
  },
);

export const logitsTensors: MessageRule = (message, tensors) => {
  const m = message as unknown as StepDone;
  const expected = m.hasLogits ? m.sampled.length : 0;
  if (tensors.length !== expected) return `expected ${expected} logits tensors, got ${tensors.length}`;
  const vocab = tensors[0]?.shape[0];
  for (const t of tensors) {
    if (t.dtype !== 'f32' || t.shape.length !== 1 || t.shape[0] !== vocab)
      return 'logits must be f32 [vocab], same vocab';
  }
  return undefined;
};
