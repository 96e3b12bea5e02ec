import type { HostKvAllocator } from '@seesaw/kv-store';
import type { StepBatch, StepKvSwap, StepResult, StepSeq } from '@seesaw/protocol';
import { applyStepResult } from './apply-step-result.ts';
import { BlockAllocator } from './block-allocator.ts';
import { HostKvTier, type PreemptionSettings, preemptionModeOf } from './host-kv-tier.ts';
import type { PreemptionMode } from './preemption-policy.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { RequestIntake } from './request-sequence.ts';
import { validateRequest } from './request-validation.ts';
import { randomSeed } from './sampling-params.ts';
import { countKvMoves, emptyCounters, type SchedulerCounters } from './scheduler-counters.ts';
import { numBlocksFor, type Sequence } from './sequence.ts';
import { checkResultMatchesPlan, type ScheduledChunk, type StepPlan } from './step-plan.ts';
import type { Phase, StepScheduler } from './step-scheduler.ts';

export interface SchedulerConfig extends PreemptionSettings {
  numKvBlocks: number;
  blockSize: number;
  /** Token budget of one step, shared by prompt chunks and decode tokens. */
  maxNumBatchedTokens: number;
  /** Cap on running sequences. */
  maxNumSeqs: number;
  /** Cap on prompt + output tokens; lowered to the KV cache's capacity when that is smaller. */
  maxModelLen: number;
  eosTokenIds: readonly number[];
  /** Fraction of all blocks that must stay free after admitting a sequence. */
  watermark: number;
  /** Seed source for requests with a null seed. */
  randomSeed?: () => number;
  /** Steps planned before the first answers: the replica's pipeline depth (pp). Default 1. */
  maxInFlight?: number;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Continuous-batching scheduler (vLLM V1 style), with no I/O: schedule() plans one step,
 * update() applies the device's sampled tokens. Up to maxInFlight steps are in flight (a
 * pipeline keeps its pp stages busy on different steps); a sequence is in at most one of them.
 *
 * Policy per step, with one token budget for prompt chunks and decode tokens:
 * 1. Running sequences in admission order each get their uncomputed tokens (1 when
 *    decoding; the next chunk of a prompt or a recompute), cut to the remaining budget.
 *    When a block is missing, the most recently admitted running sequence is preempted
 *    (blocks freed, put at the front of the waiting queue), possibly the sequence itself:
 *    by swap when the host tier has room and the preemption mode picks it (see
 *    preemption-policy.ts), by recompute otherwise. A swapped-out sequence keeps its
 *    computed tokens in host slots (the step's swapOuts copies them before the step's
 *    compute, so this step may reuse its blocks).
 * 2. If nothing was preempted, waiting sequences are admitted FIFO while budget, maxNumSeqs
 *    and blocks allow. Admission needs free blocks for the whole (re)computed prompt while
 *    leaving `watermark` of the cache free (waived when nothing runs, so a long sequence
 *    can always restart); blocks are then taken chunk by chunk. A swapped-out sequence gets
 *    blocks for its host-held tokens too, a swapIn to fill them, and its host slots back
 *    to the free pool. A sequence admitted with a partial chunk has used up the budget, so
 *    the check never double-counts free blocks. Swap-outs and swap-ins never share a step.
 *
 * With maxInFlight > 1, step 1 sees only the running sequences not in a step in flight, takes at
 * most ceil(running / maxInFlight) of them (so the steps in flight split the running set into
 * micro-batches), and picks preemption victims among them only. A step whose first sequence
 * could only fit by preempting itself plans nothing while other steps are in flight (their
 * answers free or idle blocks). With maxInFlight = 1 all of this is the plain policy above.
 *
 * As a StepScheduler it is the static policy: one configuration, no phases.
 */
export class Scheduler implements StepScheduler {
  readonly phase: Phase | null = null;
  readonly maxInFlight: number;
  readonly blockSize: number;
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
  /** The length cap in force: min(configured maxModelLen, KV cache capacity in tokens). */
  readonly maxModelLen: number;
  readonly numWatermarkBlocks: number;
  readonly allocator: BlockAllocator;
  readonly counters: SchedulerCounters = emptyCounters();
  readonly preemptionMode: PreemptionMode;
  /** Host KV tier accounting and swap policy (null without a host tier). */
  readonly hostTier: HostKvTier | null;

  private readonly intake: RequestIntake;
  /** Front = next to admit. */
  private waiting: Sequence[] = [];
  /** Admission order: the last one is the first to be preempted. */
  private running: Sequence[] = [];
  private readonly seqsById = new Map<number, Sequence>();
  /** Finished sequences the device has not been told to release yet. */
  private pendingReleasedSeqIds: number[] = [];
  private readonly inFlight = new Map<number, StepPlan>();
  /** Sequences in a step in flight: not planned again until it is updated. */
  private readonly busy = new Set<number>();
  private nextStepId = 0;

  constructor(config: SchedulerConfig) {
    this.blockSize = positiveInteger('blockSize', config.blockSize);
    this.maxNumBatchedTokens = positiveInteger('maxNumBatchedTokens', config.maxNumBatchedTokens);
    this.maxNumSeqs = positiveInteger('maxNumSeqs', config.maxNumSeqs);
    const numKvBlocks = positiveInteger('numKvBlocks', config.numKvBlocks);
    this.maxModelLen = Math.min(
      positiveInteger('maxModelLen', config.maxModelLen),
      numKvBlocks * this.blockSize,
    );
    if (!(config.watermark >= 0 && config.watermark < 1)) {
      throw new RangeError(`watermark must be in [0, 1), got ${config.watermark}`);
    }
    this.numWatermarkBlocks = Math.floor(config.watermark * numKvBlocks);
    this.allocator = new BlockAllocator(numKvBlocks);
    this.intake = new RequestIntake([...config.eosTokenIds], config.randomSeed ?? randomSeed);
    this.maxInFlight = positiveInteger('maxInFlight', config.maxInFlight ?? 1);

    this.preemptionMode = preemptionModeOf(config);
    this.hostTier = config.hostKv
      ? new HostKvTier(config.hostKv, this.blockSize, this.preemptionMode, config)
      : null;
  }

  /** Host slot accounting (null without a host tier). */
  get hostAllocator(): HostKvAllocator | null {
    return this.hostTier?.allocator ?? null;
  }

  /** Sequences whose KV is in host slots, waiting for readmission. */
  get numSwappedOut(): number {
    return this.hostAllocator?.numSequences ?? 0;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numInFlight(): number {
    return this.inFlight.size;
  }

  hasUnfinishedRequests(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** The static policy never switches. */
  pendingSwitch(): Phase | null {
    return null;
  }

  enterPhase(phase: Phase, _numKvBlocks?: number): void {
    throw new Error(`the static scheduler has no phases (asked to enter ${phase})`);
  }

  /** Queues a request at the back of the waiting queue; throws RequestRejectedError if it can never run. */
  addRequest(request: EngineRequest, arrivalMs: number): void {
    validateRequest(request, this.maxModelLen, this.allocator.numBlocks * this.blockSize);
    this.intake.rejectDuplicate(request);
    const seq = this.intake.admit(request, arrivalMs);
    this.seqsById.set(seq.seqId, seq);
    this.waiting.push(seq);
  }

  /**
   * Plans the next step; with nothing in flight, null only when nothing is unfinished (the
   * policy always schedules the oldest running or waiting sequence: it fits the cache alone).
   * With steps in flight, null when nothing can run before one of them answers.
   */
  schedule(): StepPlan | null {
    if (this.inFlight.size >= this.maxInFlight) {
      const stepIds = [...this.inFlight.keys()].join(', ');
      throw new Error(`step ${stepIds} still in flight (at most ${this.maxInFlight} at once)`);
    }
    const seqs: StepSeq[] = [];
    const chunks: ScheduledChunk[] = [];
    const preemptedSeqIds: number[] = [];
    const addedSeqs: StepBatch['addedSeqs'] = [];
    const swapOuts: StepKvSwap[] = [];
    const swapIns: StepKvSwap[] = [];
    let budget = this.maxNumBatchedTokens;

    const take = (seq: Sequence, numNewTokens: number): void => {
      const startPos = seq.numComputedTokens;
      const end = startPos + numNewTokens;
      const isSampled = end === seq.numTokens;
      seqs.push({
        seqId: seq.seqId,
        tokenIds: seq.tokenSlice(startPos, end),
        startPos,
        blockTable: seq.blockIds.slice(0, numBlocksFor(end, this.blockSize)),
        isSampled,
        outputIndex: seq.outputTokenIds.length,
      });
      chunks.push({ seqId: seq.seqId, startPos, numNewTokens, isSampled });
      budget -= numNewTokens;
    };

    // Admission order; victims are taken from the end. Sequences in flight are neither.
    const idle = this.running.filter((seq) => !this.busy.has(seq.seqId));
    const microBatchSize = Math.ceil(this.running.length / this.maxInFlight);
    for (let i = 0; i < idle.length && budget > 0 && seqs.length < microBatchSize; ) {
      const seq = idle[i];
      const numNewTokens = Math.min(seq.numUncomputedTokens, budget);
      const numMissingBlocks =
        numBlocksFor(seq.numComputedTokens + numNewTokens, this.blockSize) - seq.blockIds.length;
      if (seqs.length === 0 && this.inFlight.size > 0) {
        // Preempting itself would leave this step without rows to carry the releases and
        // swap-outs: wait for the steps in flight instead (nothing is changed yet). It fits
        // unless even preempting every later idle sequence frees too few blocks.
        let numFreeable = 0;
        for (let j = i + 1; j < idle.length; j++) numFreeable += idle[j].blockIds.length;
        if (!this.allocator.canAllocate(numMissingBlocks - numFreeable)) return null;
      }
      let isSelfPreempted = false;
      while (!this.allocator.canAllocate(numMissingBlocks)) {
        const victim = idle.pop()!;
        this.preempt(victim, swapOuts);
        preemptedSeqIds.push(victim.seqId);
        if (victim === seq) {
          isSelfPreempted = true;
          break;
        }
      }
      if (isSelfPreempted) break; // it was the last idle running sequence
      if (numMissingBlocks > 0) seq.blockIds.push(...this.allocator.allocate(numMissingBlocks));
      take(seq, numNewTokens);
      i++;
    }

    if (preemptedSeqIds.length > 0) this.running = this.running.filter((seq) => seq.status === 'running');

    // Admitting while preempting would only make the next preemption come sooner.
    if (preemptedSeqIds.length === 0) {
      while (this.waiting.length > 0 && budget > 0 && this.running.length < this.maxNumSeqs) {
        const seq = this.waiting[0];
        // Blocks for every position computed before the first sample (the sampled token
        // gets its block at the next step, like any decode).
        const numPromptBlocks = numBlocksFor(seq.numTokens, this.blockSize);
        const numReserved = this.running.length === 0 ? 0 : this.numWatermarkBlocks;
        if (!this.allocator.canAllocate(numPromptBlocks, numReserved)) break;
        this.waiting.shift();
        // Swapped-out sequences resume after their host-held tokens; others start at 0.
        const numNewTokens = Math.min(seq.numUncomputedTokens, budget);
        const numBlocks = numBlocksFor(seq.numComputedTokens + numNewTokens, this.blockSize);
        seq.blockIds = this.allocator.allocate(numBlocks);
        if (seq.hostSlotIds.length > 0) swapIns.push(this.hostTier!.swapIn(seq));
        seq.status = 'running';
        this.running.push(seq);
        addedSeqs.push(seq.addedSeq());
        take(seq, numNewTokens);
      }
    }

    // Nothing to run: no side effects, releases stay pending for the next real step.
    if (seqs.length === 0) return null;
    const batch: StepBatch = {
      stepId: this.nextStepId++,
      addedSeqs,
      releasedSeqIds: [...this.pendingReleasedSeqIds, ...preemptedSeqIds],
      seqs,
    };
    if (swapOuts.length > 0) batch.swapOuts = swapOuts;
    if (swapIns.length > 0) batch.swapIns = swapIns;
    this.pendingReleasedSeqIds = [];
    const plan: StepPlan = { batch, chunks, preemptedSeqIds };
    this.inFlight.set(batch.stepId, plan);
    for (const { seqId } of seqs) this.busy.add(seqId);
    return plan;
  }

  /** Applies a step's result; returns the requests that finished in it. */
  update(plan: StepPlan, result: StepResult, nowMs: number): RequestOutput[] {
    const { stepId } = plan.batch;
    if (this.inFlight.get(stepId) !== plan) throw new Error(`step ${stepId} is not in flight`);
    checkResultMatchesPlan(plan, result);
    this.inFlight.delete(stepId);
    for (const { seqId } of plan.batch.seqs) this.busy.delete(seqId);
    const counters = this.counters;
    counters.numSteps++;
    counters.numPreemptions += plan.preemptedSeqIds.length;
    for (const swap of plan.batch.swapOuts ?? []) {
      counters.numSwapOuts++;
      counters.swappedBytes += this.hostTier!.bytesOf(swap.numTokens);
    }
    for (const swap of plan.batch.swapIns ?? []) {
      counters.numSwapIns++;
      counters.swappedBytes += this.hostTier!.bytesOf(swap.numTokens);
    }
    for (const swaps of [plan.batch.swapOuts ?? [], plan.batch.swapIns ?? []])
      countKvMoves(counters, swaps, (numTokens) => this.hostTier!.bytesOf(numTokens));

    const outputs = applyStepResult(
      plan,
      result,
      this.seqsById,
      counters,
      this.maxModelLen,
      nowMs,
      (seq, reason) => this.finish(seq, reason),
    );
    if (outputs.length > 0) this.running = this.running.filter((seq) => seq.status === 'running');
    return outputs;
  }

  /** Frees the sequence's blocks, keeping its computed tokens in host slots (a swapOut) when the policy swaps. */
  private preempt(seq: Sequence, swapOuts: StepKvSwap[]): void {
    const swapOut = this.hostTier?.trySwapOut(seq) ?? null;
    if (swapOut) swapOuts.push(swapOut);
    else seq.numComputedTokens = 0;
    this.allocator.free(seq.blockIds);
    seq.blockIds = [];
    seq.numPreemptions++;
    seq.status = 'waiting';
    this.waiting.unshift(seq);
  }

  private finish(seq: Sequence, reason: NonNullable<Sequence['finishReason']>): void {
    this.allocator.free(seq.blockIds);
    seq.blockIds = [];
    this.hostTier?.release(seq);
    seq.status = 'finished';
    seq.finishReason = reason;
    this.seqsById.delete(seq.seqId);
    this.pendingReleasedSeqIds.push(seq.seqId);
  }
}
