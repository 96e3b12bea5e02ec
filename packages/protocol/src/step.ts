/**
 * One engine step as the coordinator hands it to a device, and what comes back.
 *
 * Step messages are diffs: a sequence's sampling settings travel once (in `addedSeqs`),
 * a prompt's tokens travel once (chunk by chunk as they are computed), and a sequence
 * the coordinator is done with is named once in `releasedSeqIds`.
 */

/** Sampling settings a device needs to pick a sequence's next token. */
export interface DeviceSamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 disables. */
  topP: number;
  /** Keep the k most likely tokens; 0 or less disables. */
  topK: number;
  /**
   * Seed of the request's random stream. The uniform draw for output token i is a pure
   * function of (seed, i), so sampling does not depend on batching, chunking or preemption.
   */
  seed: number;
  /**
   * OpenAI's penalties over the tokens this sequence generated so far: logit[t] -=
   * count[t] * frequencyPenalty + (count[t] > 0) * presencePenalty, before temperature and the
   * top-k/top-p cut. Absent means 0 (and then sampling is exactly as without them).
   */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /**
   * Present when the request asks for log probabilities: the step result then carries the
   * chosen token's and this many (0..20) most likely tokens' log-softmax of the raw logits.
   */
  numLogprobs?: number;
}

/** One alternative of a sampled position, with its log probability. */
export interface TokenLogprob {
  tokenId: number;
  logprob: number;
}

/**
 * Log probabilities of one sampled position: log-softmax of the raw logits (before penalties,
 * temperature and the top-k/top-p cut, as vLLM's default `raw_logprobs`).
 */
export interface SampledLogprobs {
  /** The chosen token's. */
  logprob: number;
  /** The numLogprobs most likely tokens, most likely first (ties: lower id first). */
  top: TokenLogprob[];
}

/** One sampled token of a step. */
export interface SampledToken {
  seqId: number;
  tokenId: number;
  /** Only for a sequence whose sampling has numLogprobs. */
  logprobs?: SampledLogprobs;
}

/**
 * What a device needs to count a penalized sequence's output tokens when it (re)learns it
 * (admission, readmission after preemption, a swap-in): the outputs generated so far, and the
 * position of the next output. Tokens the sequence is fed at positions >= nextPosition are later
 * outputs (a sampled token is fed at the next step); those before are prompt or already counted,
 * so a recompute or a repeated step does not count twice.
 */
export interface DeviceOutputHistory {
  tokenIds: number[];
  nextPosition: number;
}

/** A sequence the device learns in this step. */
export interface AddedSeq {
  seqId: number;
  sampling: DeviceSamplingParams;
  /** Present only for a sequence with a penalty. */
  outputHistory?: DeviceOutputHistory;
}

/** Work for one sequence in one step. */
export interface StepSeq {
  /** Coordinator-wide id of the sequence (stable across preemption). */
  seqId: number;
  /** Tokens whose K/V this step computes, in order: a prompt chunk, or the last sampled token. */
  tokenIds: number[];
  /** Position of tokenIds[0]: the number of this sequence's tokens already in the KV cache. */
  startPos: number;
  /**
   * Physical KV block ids holding positions [0, startPos + tokenIds.length), in order:
   * position p lives in block blockTable[floor(p / blockSize)] at slot p % blockSize.
   */
  blockTable: number[];
  /** Whether to sample a token after the last of tokenIds (false for a non-final prompt chunk). */
  isSampled: boolean;
  /** Index of the output token being sampled (0 for the first generated token); feeds the RNG. */
  outputIndex: number;
}

/**
 * A sequence's KV moving between the device's paged cache and the host tier (preemption by
 * swapping). Positions [0, numTokens) live in blockIds (position p in block
 * blockIds[floor(p / blockSize)], slot p % blockSize) and, on the host, in slotIds in the same
 * order (a host slot holds blockSize tokens, so both lists have ceil(numTokens / blockSize)
 * entries).
 */
export interface StepKvSwap {
  seqId: number;
  /** Device blocks: read from by a swap-out, written by a swap-in. */
  blockIds: number[];
  /** Host slots, in token order: written by a swap-out, read by a swap-in. */
  slotIds: number[];
  /** Tokens moved: positions [0, numTokens). */
  numTokens: number;
}

/** One forward step over a mixed batch of prompt chunks and decode tokens. */
export interface StepBatch {
  stepId: number;
  /** Sequences the device has not seen before (or must forget and relearn). */
  addedSeqs: AddedSeq[];
  /** Sequences finished or preempted: the device drops its per-sequence state. */
  releasedSeqIds: number[];
  seqs: StepSeq[];
  /** Return each sampled row's logits as well (tests and logprob users). */
  isLogitsReturned?: boolean;
  /**
   * Sequences to copy from device blocks to host slots. Done first, before releases and the
   * step's compute: their blocks may be handed to other sequences in this very step.
   */
  swapOuts?: StepKvSwap[];
  /**
   * Sequences to copy from host slots into (new) device blocks, after swapOuts, releases and
   * addedSeqs and before compute: the sequence's first chunk in this step starts at numTokens.
   */
  swapIns?: StepKvSwap[];
  /**
   * After this step computes layer l's K/V, positions [0, numTokens) of each listed sequence
   * (its blockIds -> host slotIds, this rank's layers x KV heads) are posted to the kv-store at
   * once, overlapped with layer l+1's compute. The step answers only after every put of it is
   * acknowledged; the scheduler then frees the blocks.
   */
  kvWriteBacks?: StepKvSwap[];
  /**
   * Swap-ins started as soon as the step arrives, NOT awaited by it (their blocks are not used
   * by this step). The first later step that contains the sequence waits for its prefetch
   * before compute.
   */
  prefetches?: StepKvSwap[];
  /**
   * Every device of the replica reports its own KV timings for this step: the answering one in
   * stepDone, every other one in a stepKv message (set by a replica whose devices hold a
   * kv-store link; without it only the answering device reports).
   */
  isKvReported?: boolean;
}

/** What a device timed on its own clock. */
export type DeviceSpanName = 'compute' | 'prefetch' | 'prefetch wait' | 'write-back' | 'write-back wait';

/**
 * One span a device measured, in ms on its own clock (performance.timeOrigin + performance.now(),
 * i.e. ms since the epoch as that thread sees it). The coordinator maps it onto its clock with
 * the offset it estimated at the device's hello.
 */
export interface DeviceSpan {
  name: DeviceSpanName;
  startMs: number;
  endMs: number;
}

/** One device's KV transfer timings for one step, milliseconds. */
export interface StepKvTimings {
  /** executeStage wall time. */
  computeMs: number;
  /** Time this step waited at its start for earlier prefetches of its sequences. */
  prefetchWaitMs: number;
  /** Summed issue->done time of prefetches that completed during this step. */
  prefetchMs: number;
  /** Issue of this step's first write-back -> last acknowledgement. */
  writeBackMs: number;
  /** Time after compute spent waiting for write-back acknowledgements. */
  writeBackWaitMs: number;
  /**
   * Prefetched sequences this step needed (it touched them), and those whose KV had landed
   * before it began: the honest swap-in hiding figure, by sequence and by bytes. Absent from
   * devices that do not count them.
   */
  prefetchesNeeded?: number;
  prefetchesLanded?: number;
  prefetchBytesNeeded?: number;
  prefetchBytesLanded?: number;
  /** The device's own spans for this step (compute, each prefetch landed, waits, write-backs). */
  spans?: DeviceSpan[];
}

/** One device's own KV report for a step, its spans on the coordinator's clock. */
export interface DeviceKvReport {
  /** Local device index in the replica. */
  device: number;
  ppStage: number;
  tpRank: number;
  kv: StepKvTimings;
}

/** A device's answer to one StepBatch. */
export interface StepResult {
  stepId: number;
  /** One entry per StepSeq with isSampled, in batch order. */
  sampled: SampledToken[];
  /** Logits rows [vocab] for the sampled entries, in the same order, when requested. */
  logits?: Float32Array[];
  /**
   * KV transfer timings for this step (ms): the answering device's, or, where every device
   * reported (StepBatch.isKvReported), all of them combined (see the coordinator's combineStepKv).
   */
  kvTimings?: StepKvTimings;
  /** Every reporting device's own timings, spans on the coordinator's clock (epoch ms); coordinator-side only. */
  deviceKv?: DeviceKvReport[];
}
