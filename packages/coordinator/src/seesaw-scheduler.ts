import type { HostKvAllocator } from '@seesaw/kv-store';
import { ENGINE_DEFAULTS, type StepResult } from '@seesaw/protocol';
import { applyStepResult } from './apply-step-result.ts';
import { BlockAllocator } from './block-allocator.ts';
import { HostKvTier } from './host-kv-tier.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { RequestIntake, rejectRequest } from './request-sequence.ts';
import { validateRequest } from './request-validation.ts';
import { randomSeed } from './sampling-params.ts';
import { countStepTransfers, emptyCounters, type SchedulerCounters } from './scheduler-counters.ts';
import { planDecodeStep } from './seesaw-decode-planner.ts';
import { checkLayoutHoldsAll, kvOverflowReason, kvTokensNeeded } from './seesaw-kv-capacity.ts';
import { DecodeDrain, isPrefillPhaseDone } from './seesaw-phase-switch.ts';
import { PrefillStepBudget } from './seesaw-prefill-budget.ts';
import { planPrefillStep } from './seesaw-prefill-planner.ts';
import {
  DEFAULT_SEESAW_HOST_LOW_MARK,
  DEFAULT_SEESAW_PREFILL_TOKEN_BUDGET,
  DEFAULT_SEESAW_WATERMARK,
  fraction,
  positiveInteger,
  type SeesawSchedulerConfig,
} from './seesaw-scheduler-config.ts';
import { StepBuilder } from './seesaw-step-builder.ts';
import type { Sequence } from './sequence.ts';
import { checkResultMatchesPlan, type StepPlan } from './step-plan.ts';
import type { EnterPhaseOptions, Phase, StepScheduler } from './step-scheduler.ts';

export {
  DEFAULT_SEESAW_HOST_LOW_MARK,
  DEFAULT_SEESAW_PREFILL_TOKEN_BUDGET,
  DEFAULT_SEESAW_WATERMARK,
  type SeesawSchedulerConfig,
} from './seesaw-scheduler-config.ts';

/** Steps in flight in `phase` on `numStages` pipeline stages (see SeesawScheduler.maxInFlight). */
export function pipelineStepsInFlight(phase: Phase, numStages: number): number {
  return phase === 'prefill' && numStages > 1 ? numStages + 1 : numStages;
}

/**
 * Seesaw's transition-minimising policy (paper section 4, defaults from its artifact), with no
 * I/O. Prefill and decode run in different parallel layouts, and every switch costs a re-shard,
 * so each phase runs as long as it can:
 *
 * - prefill: see seesaw-prefill-planner.ts (FIFO admission within the token budget, host slots
 *   and device blocks reserved for the whole prompt). The step computing a prompt's last chunk
 *   samples its first token and writes every prompt position back to the host (kvWriteBacks);
 *   on update its blocks are freed and it is parked.
 *   With a pipeline, the phase is cut into equal micro-batches (seesaw-prefill-budget.ts).
 * - prefill -> decode when nothing is mid-prompt, something is parked, and no prompt waits or
 *   the next one cannot reserve its host slots (seesaw-phase-switch.ts).
 * - decode: see seesaw-decode-planner.ts (micro-batches, refill by prefetch, preemption).
 * - decode -> prefill when prompts wait, host usage <= hostLowMark, and the host can take every
 *   running sequence's KV plus the next prompt: each running sequence's next step writes its KV
 *   back, it is parked at the front of the queue, and once all are the switch is pending
 *   (DecodeDrain, seesaw-phase-switch.ts).
 *
 * A sequence is never in two steps in flight (nor in one while its prefetch is in flight). At a
 * switch the device keeps no KV: everything unfinished is parked in host slots or waiting.
 */
export class SeesawScheduler implements StepScheduler {
  readonly blockSize: number;
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
  /** The length cap in force: min(configured maxModelLen, prefill layout's KV capacity). */
  readonly maxModelLen: number;
  readonly watermark: number;
  readonly hostLowMark: number;
  readonly counters: SchedulerCounters = emptyCounters();
  readonly hostTier: HostKvTier;

  private phaseNow: Phase = 'prefill';
  private allocatorNow: BlockAllocator;
  /** Pipeline stages (pp) of the current layout. */
  private numStagesNow: number;
  /** Each prefill step's token budget: the whole one, or a pipelined phase's micro-batch. */
  private readonly prefillBudget: PrefillStepBudget;
  private readonly defaultMaxInFlight: number;
  /** Token capacity of each layout's device cache, once known. */
  private readonly capacityTokens: Partial<Record<Phase, number>> = {};
  private readonly intake: RequestIntake;

  /** Not started (or preempted by recompute): front = next to admit. */
  private readonly waiting: Sequence[] = [];
  /** Admitted in prefill, prompt not fully computed, in admission order. */
  private prefilling: Sequence[] = [];
  /** KV in host slots, waiting for decode: front = next to swap in. */
  private parked: Sequence[] = [];
  /** Decoding on the device, in admission order (the last is the first preempted). */
  private running: Sequence[] = [];
  /** Admitted by a prefetch whose step is in flight; they join `running` when it is updated. */
  private readonly incoming = new Set<Sequence>();
  /** Leaving decode: the running sequences writing their KV back before the switch. */
  private readonly drain = new DecodeDrain();
  /** Sequences in a step in flight (rows or prefetches). */
  private readonly busy = new Set<number>();
  private readonly inFlight = new Map<number, StepPlan>();
  private readonly seqsById = new Map<number, Sequence>();
  private pendingReleasedSeqIds: number[] = [];
  private nextStepId = 0;

  constructor(config: SeesawSchedulerConfig) {
    this.blockSize = positiveInteger('blockSize', config.blockSize);
    const numKvBlocks = positiveInteger('numKvBlocks', config.numKvBlocks);
    this.maxNumBatchedTokens = positiveInteger(
      'maxNumBatchedTokens',
      config.maxNumBatchedTokens ?? DEFAULT_SEESAW_PREFILL_TOKEN_BUDGET,
    );
    this.prefillBudget = new PrefillStepBudget(this.maxNumBatchedTokens);
    this.maxNumSeqs = positiveInteger('maxNumSeqs', config.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs);
    this.maxModelLen = Math.min(
      positiveInteger('maxModelLen', config.maxModelLen),
      numKvBlocks * this.blockSize,
    );
    this.watermark = fraction('watermark', config.watermark ?? DEFAULT_SEESAW_WATERMARK, false);
    this.hostLowMark = fraction('hostLowMark', config.hostLowMark ?? DEFAULT_SEESAW_HOST_LOW_MARK, true);
    this.defaultMaxInFlight = positiveInteger('maxInFlight', config.maxInFlight ?? 1);
    this.numStagesNow = this.defaultMaxInFlight;
    this.allocatorNow = new BlockAllocator(numKvBlocks);
    this.capacityTokens.prefill = numKvBlocks * this.blockSize;
    if (config.numDecodeKvBlocks !== undefined)
      this.capacityTokens.decode =
        positiveInteger('numDecodeKvBlocks', config.numDecodeKvBlocks) * this.blockSize;
    if (!config.hostKv) throw new RangeError('the seesaw scheduler needs a host KV tier (hostKv)');
    // 'swap': a preempted decode sequence goes to the host whenever there is room.
    this.hostTier = new HostKvTier(config.hostKv, this.blockSize, 'swap', { hostKv: config.hostKv });
    this.intake = new RequestIntake([...config.eosTokenIds], config.randomSeed ?? randomSeed);
  }

  get phase(): Phase {
    return this.phaseNow;
  }

  get allocator(): BlockAllocator {
    return this.allocatorNow;
  }

  get hostAllocator(): HostKvAllocator {
    return this.hostTier.allocator;
  }

  /**
   * Steps that may be in flight now. A pipelined prefill phase keeps one micro-batch more than
   * it has stages in flight: the extra one waits at the first stage (on a device that queues
   * steps; EngineCore caps the depth at what the executor takes), so the first stage goes on to
   * it as soon as it is done instead of idling for the coordinator's round trip behind the last
   * stage's answer. Micro-batches are disjoint, so any depth is safe. Decode keeps pp: its
   * micro-batches split the running set, and more of them would only be smaller.
   */
  get maxInFlight(): number {
    return pipelineStepsInFlight(this.phaseNow, this.numStagesNow);
  }

  get numInFlight(): number {
    return this.inFlight.size;
  }

  /** Blocks decode admission keeps free: floor(watermark * blocks of the current layout). */
  get numWatermarkBlocks(): number {
    return Math.floor(this.watermark * this.allocatorNow.numBlocks);
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numPrefilling(): number {
    return this.prefilling.length;
  }

  /** Sequences whose KV is in host slots, waiting for decode (drained ones included). */
  get numParked(): number {
    return this.parked.length + this.drain.numDrained;
  }

  /** Sequences decoding on the device, prefetched ones included. */
  get numRunning(): number {
    return this.running.length + this.incoming.size;
  }

  /** Tokens the next waiting sequence would prefill (its prompt, plus outputs after a recompute), or null. */
  get nextWaitingTokens(): number | null {
    return this.waiting[0]?.numTokens ?? null;
  }

  /** Host slots in use / total. */
  get hostUsage(): number {
    const host = this.hostAllocator;
    return host.numSlots === 0 ? 0 : host.numUsedSlots / host.numSlots;
  }

  hasUnfinishedRequests(): boolean {
    return this.seqsById.size > 0;
  }

  /**
   * Queues a request at the back of the waiting queue. Rejects (RequestRejectedError, nothing
   * queued) one whose KV could outgrow the host tier or a layout's device cache: up to
   * min(prompt + maxTokens, maxModelLen) - 1 positions are computed.
   */
  addRequest(request: EngineRequest, arrivalMs: number): void {
    validateRequest(request, this.maxModelLen, this.capacityTokens.prefill!);
    this.intake.rejectDuplicate(request);
    const numKvTokens = kvTokensNeeded(
      request.promptTokenIds.length,
      request.sampling.maxTokens,
      this.maxModelLen,
    );
    const host = this.hostAllocator;
    const overflow = kvOverflowReason(numKvTokens, host.numSlots * host.tokensPerSlot, this.capacityTokens);
    if (overflow !== null) rejectRequest(request, overflow);
    const seq = this.intake.admit(request, arrivalMs);
    this.seqsById.set(seq.seqId, seq);
    this.waiting.push(seq);
  }

  /** The next step; null when maxInFlight steps are in flight or nothing can be planned before one answers or a switch. */
  schedule(): StepPlan | null {
    if (this.inFlight.size >= this.maxInFlight) return null;
    if (this.phaseNow === 'decode') this.maybeStartDrain();
    const builder = new StepBuilder(this.blockSize);
    if (this.phaseNow === 'prefill') this.planPrefillStep(builder);
    else this.planDecodeStep(builder);
    if (builder.isEmpty) return null;
    const plan = builder.build(this.nextStepId++, this.pendingReleasedSeqIds);
    this.pendingReleasedSeqIds = [];
    for (const { seqId } of plan.batch.seqs) this.busy.add(seqId);
    for (const { seqId } of plan.batch.prefetches ?? []) this.busy.add(seqId);
    this.inFlight.set(plan.batch.stepId, plan);
    return plan;
  }

  private planPrefillStep(builder: StepBuilder): void {
    planPrefillStep(builder, {
      prefilling: this.prefilling,
      waiting: this.waiting,
      isBusy: (seq) => this.busy.has(seq.seqId),
      tokenBudget: this.prefillBudget.next({
        prefilling: this.prefilling,
        waiting: this.waiting,
        host: this.hostAllocator,
        numStages: this.numStagesNow,
        isBusy: (seq) => this.busy.has(seq.seqId),
      }),
      allocator: this.allocatorNow,
      canReserveHost: (numTokens) => this.canReserveHost(numTokens),
      reserveHost: (seq, numTokens) => this.reserveHost(seq, numTokens),
    });
  }

  private planDecodeStep(builder: StepBuilder): void {
    planDecodeStep(builder, {
      running: this.running,
      parked: this.parked,
      waiting: this.waiting,
      isBusy: (seq) => this.busy.has(seq.seqId),
      numInFlight: this.inFlight.size,
      numIncoming: this.incoming.size,
      isDraining: this.drain.isDraining,
      maxInFlight: this.numStagesNow,
      maxNumSeqs: this.maxNumSeqs,
      numWatermarkBlocks: this.numWatermarkBlocks,
      allocator: this.allocatorNow,
      hostTier: this.hostTier,
      reserveHost: (seq, numTokens) => this.reserveHost(seq, numTokens),
      onPrefetched: (seq) => this.incoming.add(seq),
    });
    // The planner edits the queues in place; dropped running sequences are filtered here.
    this.running = this.running.filter((seq) => seq.status === 'running');
  }

  private canReserveHost(numTokens: number, numKeptFree = 0): boolean {
    const host = this.hostAllocator;
    return host.canReserve(host.slotsForTokens(numTokens), numKeptFree);
  }

  private reserveHost(seq: Sequence, numTokens: number): void {
    const host = this.hostAllocator;
    const reserved = host.reserve(seq.seqId, host.slotsForTokens(numTokens));
    if (!reserved.ok) throw new Error(`host KV accounting: ${reserved.reason}`);
    seq.hostSlotIds = reserved.slotIds;
  }

  private maybeStartDrain(): void {
    this.drain.maybeStart({
      waiting: this.waiting,
      running: this.running,
      numIncoming: this.incoming.size,
      host: this.hostAllocator,
      hostUsage: this.hostUsage,
      hostLowMark: this.hostLowMark,
      isBusy: (seq) => this.busy.has(seq.seqId),
    });
  }

  /**
   * The switch pendingSwitch() named. EngineCore re-shards on it, so it stands until enterPhase:
   * requests added while the replica re-shards (a lost replica's, requeued here) wait for the
   * next prefill phase instead of taking back a switch the devices have made.
   */
  private announcedSwitch: Phase | null = null;

  pendingSwitch(): Phase | null {
    this.announcedSwitch ??= this.switchDue();
    return this.announcedSwitch;
  }

  private switchDue(): Phase | null {
    if (this.inFlight.size > 0) return null;
    if (this.phaseNow === 'prefill') {
      const isDone = isPrefillPhaseDone({
        prefilling: this.prefilling,
        parked: this.parked,
        waiting: this.waiting,
        canReserveHost: (numTokens) => this.canReserveHost(numTokens),
      });
      return isDone ? 'decode' : null;
    }
    this.maybeStartDrain();
    return this.drain.isDraining && this.running.length === 0 ? 'prefill' : null;
  }

  enterPhase(phase: Phase, numKvBlocks: number, options: EnterPhaseOptions = {}): void {
    if (phase === this.phaseNow) throw new Error(`already in the ${phase} phase`);
    if (this.pendingSwitch() !== phase) throw new Error(`entering ${phase}, but no switch to it is pending`);
    this.announcedSwitch = null;
    if (this.allocatorNow.numUsedBlocks > 0)
      throw new Error(`entering ${phase} with ${this.allocatorNow.numUsedBlocks} device blocks in use`);
    positiveInteger('numKvBlocks', numKvBlocks);
    const capacity = numKvBlocks * this.blockSize;
    checkLayoutHoldsAll(phase, capacity, this.seqsById.values(), this.maxModelLen);
    this.capacityTokens[phase] = capacity;
    this.allocatorNow = new BlockAllocator(numKvBlocks);
    this.numStagesNow = positiveInteger('maxInFlight', options.maxInFlight ?? this.defaultMaxInFlight);
    this.prefillBudget.startPhase();
    if (phase === 'prefill' && this.drain.isDraining) this.parked = [...this.drain.finish(), ...this.parked];
    this.phaseNow = phase;
    this.counters.numSwitches++;
  }

  update(plan: StepPlan, result: StepResult, nowMs: number): RequestOutput[] {
    const { stepId } = plan.batch;
    if (this.inFlight.get(stepId) !== plan) throw new Error(`step ${stepId} is not in flight`);
    checkResultMatchesPlan(plan, result);
    this.inFlight.delete(stepId);
    countStepTransfers(this.counters, plan, (numTokens) => this.hostTier.bytesOf(numTokens));
    for (const { seqId } of plan.batch.seqs) this.busy.delete(seqId);
    // Swap-ins and prefetches read their host slots when the step arrives: free them now.
    for (const swap of [...(plan.batch.swapIns ?? []), ...(plan.batch.prefetches ?? [])]) {
      const seq = this.seqsById.get(swap.seqId)!;
      this.hostTier.release(seq);
    }
    for (const swap of plan.batch.prefetches ?? []) {
      const seq = this.seqsById.get(swap.seqId)!;
      this.busy.delete(seq.seqId);
      this.incoming.delete(seq);
      this.running.push(seq);
    }

    const outputs = applyStepResult(
      plan,
      result,
      this.seqsById,
      this.counters,
      this.maxModelLen,
      nowMs,
      (seq, reason) => this.finish(seq, reason),
    );
    for (const swap of plan.batch.kvWriteBacks ?? []) {
      const seq = this.seqsById.get(swap.seqId);
      if (seq) this.park(seq);
    }
    if (outputs.length > 0 || plan.batch.kvWriteBacks) {
      const isOnDevice = (seq: Sequence) => seq.status === 'running';
      this.prefilling = this.prefilling.filter(isOnDevice);
      this.running = this.running.filter(isOnDevice);
    }
    return outputs;
  }

  /** After its write-back: the KV is in host slots, the device forgets the sequence. */
  private park(seq: Sequence): void {
    this.allocatorNow.free(seq.blockIds);
    seq.blockIds = [];
    seq.status = 'waiting';
    this.pendingReleasedSeqIds.push(seq.seqId);
    if (this.phaseNow === 'prefill') this.parked.push(seq);
    else this.drain.add(seq);
  }

  private finish(seq: Sequence, reason: NonNullable<Sequence['finishReason']>): void {
    this.allocatorNow.free(seq.blockIds);
    seq.blockIds = [];
    this.hostTier.release(seq);
    seq.status = 'finished';
    seq.finishReason = reason;
    this.seqsById.delete(seq.seqId);
    this.pendingReleasedSeqIds.push(seq.seqId);
  }
}
