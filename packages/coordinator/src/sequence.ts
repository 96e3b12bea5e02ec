import type { AddedSeq, DeviceSamplingParams, SampledLogprobs } from '@seesaw/protocol';
import type { FinishReason, RequestOutput } from './request.ts';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

/** Scheduler-side state of one request. Its tokens are prompt + outputs so far. */
export class Sequence {
  readonly seqId: number;
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly outputTokenIds: number[] = [];
  /** Each output's log probabilities, for a request that asks (deviceSampling.numLogprobs). */
  readonly outputLogprobs: SampledLogprobs[] | null;
  readonly deviceSampling: DeviceSamplingParams;
  readonly maxTokens: number;
  /** Stop and (unless ignoreEos) EOS token ids. */
  readonly stopTokenIds: ReadonlySet<number>;
  readonly arrivalMs: number;
  /** EngineRequest.stopWhen. */
  private readonly stopWhen?: (outputTokenIds: readonly number[]) => boolean;
  /** EngineRequest.onProgress. */
  readonly onProgress?: (outputTokenIds: readonly number[]) => void;

  status: SequenceStatus = 'waiting';
  /**
   * Tokens whose K/V is in the cache: positions [0, numComputedTokens). Reset by preemption
   * by recompute; kept by a swap-out (then they are in hostSlotIds until readmission).
   */
  numComputedTokens = 0;
  /** High-water mark of numComputedTokens: positions below it that are computed again are recompute. */
  numEverComputedTokens = 0;
  /** Physical blocks holding positions [0, blockIds.length * blockSize), in order. */
  blockIds: number[] = [];
  /** Host KV slots holding positions [0, numComputedTokens) while swapped out; empty otherwise. */
  hostSlotIds: number[] = [];
  numPreemptions = 0;
  firstTokenMs = Number.NaN;
  finishReason: FinishReason | null = null;

  constructor(args: {
    seqId: number;
    requestId: string;
    promptTokenIds: readonly number[];
    deviceSampling: DeviceSamplingParams;
    maxTokens: number;
    stopTokenIds: ReadonlySet<number>;
    arrivalMs: number;
    stopWhen?: (outputTokenIds: readonly number[]) => boolean;
    onProgress?: (outputTokenIds: readonly number[]) => void;
  }) {
    this.stopWhen = args.stopWhen;
    this.onProgress = args.onProgress;
    this.seqId = args.seqId;
    this.requestId = args.requestId;
    this.promptTokenIds = args.promptTokenIds;
    this.deviceSampling = args.deviceSampling;
    this.outputLogprobs = args.deviceSampling.numLogprobs === undefined ? null : [];
    this.maxTokens = args.maxTokens;
    this.stopTokenIds = args.stopTokenIds;
    this.arrivalMs = args.arrivalMs;
  }

  /** The step message that (re)introduces this sequence to a device (penalized ones carry their outputs). */
  addedSeq(): AddedSeq {
    const { presencePenalty, frequencyPenalty } = this.deviceSampling;
    if (!presencePenalty && !frequencyPenalty)
      return { seqId: this.seqId, sampling: { ...this.deviceSampling } };
    return {
      seqId: this.seqId,
      sampling: { ...this.deviceSampling },
      outputHistory: { tokenIds: [...this.outputTokenIds], nextPosition: this.numTokens },
    };
  }

  get numTokens(): number {
    return this.promptTokenIds.length + this.outputTokenIds.length;
  }

  /** Tokens still to be computed before the next sample (prompt chunk, recompute, or last output). */
  get numUncomputedTokens(): number {
    return this.numTokens - this.numComputedTokens;
  }

  /** Tokens at positions [start, end) of prompt + outputs. */
  tokenSlice(start: number, end: number): number[] {
    const promptLength = this.promptTokenIds.length;
    const tokens: number[] = [];
    for (let p = start; p < end; p++) {
      tokens.push(p < promptLength ? this.promptTokenIds[p] : this.outputTokenIds[p - promptLength]);
    }
    return tokens;
  }

  /**
   * The finish reason after a token was appended, or null to go on. A stop token wins over
   * the length caps when both apply to the same token.
   */
  checkFinished(maxModelLen: number): FinishReason | null {
    const lastToken = this.outputTokenIds[this.outputTokenIds.length - 1];
    if (this.stopTokenIds.has(lastToken)) return 'stop';
    if (this.stopWhen?.(this.outputTokenIds)) return 'stop';
    if (this.outputTokenIds.length >= this.maxTokens || this.numTokens >= maxModelLen) return 'length';
    return null;
  }

  toOutput(finishMs: number): RequestOutput {
    if (this.finishReason === null) throw new Error(`sequence ${this.seqId} is not finished`);
    return {
      requestId: this.requestId,
      promptTokenIds: [...this.promptTokenIds],
      outputTokenIds: [...this.outputTokenIds],
      finishReason: this.finishReason,
      ...(this.outputLogprobs ? { outputLogprobs: [...this.outputLogprobs] } : {}),
      numPreemptions: this.numPreemptions,
      arrivalMs: this.arrivalMs,
      firstTokenMs: this.firstTokenMs,
      finishMs,
    };
  }
}

/** Blocks needed to hold `numTokens` positions. */
export function numBlocksFor(numTokens: number, blockSize: number): number {
  return Math.ceil(numTokens / blockSize);
}
