import type { DeviceSamplingParams, StepBatch, StepKvSwap, StepResult } from '@seesaw/protocol';
import type { ExecutionDevice } from '../src/engine.ts';
import { hashNextToken } from './hash-next-token.ts';

export interface HashingTestDeviceOptions {
  numKvBlocks: number;
  blockSize: number;
  /** Sampled token ids are in [0, vocabSize). */
  vocabSize: number;
  /** Called with each batch before it runs (tests inspect budgets and protocol diffs). */
  onBatch?: (batch: StepBatch) => void;
  /** Host KV slots (blockSize tokens each) that swaps, write-backs and prefetches use; default 0. */
  numHostSlots?: number;
  /** Modelled KV transfer time per token moved, reported in kvTimings (default 0). */
  kvMsPerToken?: number;
}

/** One host slot's contents: the token ids of positions [firstPosition, +blockSize) of a sequence. */
interface HostSlot {
  seqId: number;
  firstPosition: number;
  tokens: number[];
}

interface LiveSeq {
  /** Unique per (seqId, admission): K/V written before a preemption must not be read after it. */
  incarnation: number;
  sampling: DeviceSamplingParams;
  numComputedTokens: number;
  /** Token sampled at the last step this sequence was in, until it is fed back. */
  lastSampledTokenId: number | null;
  /** Its KV was dropped (a phase switch): only a release is valid now. */
  isStale: boolean;
}

export { hashNextToken } from './hash-next-token.ts';

const UNWRITTEN = -1;
const NO_HOLDER = -1;

/**
 * A model-free device that checks the KV protocol for real. It keeps a paged "KV cache" of
 * token ids addressed exactly as StepSeq specifies (position p of a sequence lives in block
 * blockTable[p / blockSize], slot p % blockSize) and samples the next token as a hash of
 * every token read back through the block table for positions 0..end, mixed with
 * (seed, outputIndex) when temperature > 0. So a wrong block table, position, chunk or
 * recompute changes the generated tokens. It also throws on protocol breaches: reading a
 * slot this sequence (since its latest admission) did not write, a block held by two live
 * sequences, startPos differing from what the sequence has computed, unknown or doubly
 * added sequences. Swaps move slot contents through a host map: a swap-out must cover
 * exactly what the sequence has computed (read back with the same checks) into host
 * slots, and the sequence must be released in the same step; a swap-in or prefetch must target
 * a freshly (re)added sequence and slots that hold its positions in order (a prefetched one
 * must not compute in the same step); a write-back copies exactly what the sequence has
 * computed, after the step's compute, into host slots. dropDeviceKv() models a phase
 * switch: the cache is re-created empty, and a sequence still live may only be released.
 */
export class HashingTestDevice implements ExecutionDevice {
  readonly blockSize: number;
  readonly vocabSize: number;
  numExecutedSteps = 0;
  /** Slot reads checked so far (sum over sampled rows of their context length). */
  numSlotReads = 0;
  /** Times a block went to a sequence incarnation other than its previous holder (reuse after free). */
  numBlockReuses = 0;
  numSwapOuts = 0;
  numSwapIns = 0;
  numWriteBacks = 0;
  numPrefetches = 0;

  private readonly onBatch?: (batch: StepBatch) => void;
  private slotToken = new Int32Array(0);
  private slotIncarnation = new Int32Array(0);
  private slotPosition = new Int32Array(0);
  /** Incarnation of the live sequence whose block table holds each block, or NO_HOLDER. */
  private blockHolder = new Int32Array(0);
  /** Last incarnation that held each block, kept after release to count reuse. */
  private lastBlockHolder = new Int32Array(0);
  private numBlocks = 0;
  private readonly kvMsPerToken: number;
  private readonly live = new Map<number, LiveSeq>();
  private readonly numHostSlots: number;
  private readonly hostSlots = new Map<number, HostSlot>();
  private nextIncarnation = 0;
  private lastStepId = -1;

  constructor(options: HashingTestDeviceOptions) {
    this.blockSize = options.blockSize;
    this.vocabSize = options.vocabSize;
    this.onBatch = options.onBatch;
    this.numHostSlots = options.numHostSlots ?? 0;
    this.kvMsPerToken = options.kvMsPerToken ?? 0;
    this.createCache(options.numKvBlocks);
  }

  get numKvBlocks(): number {
    return this.numBlocks;
  }

  private createCache(numKvBlocks: number): void {
    this.numBlocks = numKvBlocks;
    const numSlots = numKvBlocks * this.blockSize;
    this.slotToken = new Int32Array(numSlots).fill(UNWRITTEN);
    this.slotIncarnation = new Int32Array(numSlots).fill(UNWRITTEN);
    this.slotPosition = new Int32Array(numSlots).fill(UNWRITTEN);
    this.blockHolder = new Int32Array(numKvBlocks).fill(NO_HOLDER);
    this.lastBlockHolder = new Int32Array(numKvBlocks).fill(NO_HOLDER);
  }

  /**
   * A phase switch: the device cache is re-created with `numKvBlocks` blocks and nothing in it.
   * Host slots survive; live sequences become stale (only a release of them is valid).
   */
  dropDeviceKv(numKvBlocks: number): void {
    this.createCache(numKvBlocks);
    for (const seq of this.live.values()) seq.isStale = true;
  }

  /** Live sequences (added and not released). */
  get numLiveSeqs(): number {
    return this.live.size;
  }

  /** Host slots holding swapped-out tokens. */
  get numUsedHostSlots(): number {
    return this.hostSlots.size;
  }

  async execute(batch: StepBatch): Promise<StepResult> {
    this.onBatch?.(batch);
    await Promise.resolve(); // a real device answers asynchronously
    return this.executeNow(batch);
  }

  private executeNow(batch: StepBatch): StepResult {
    const fail = (why: string): never => {
      throw new Error(`step ${batch.stepId}: ${why}`);
    };
    if (batch.stepId <= this.lastStepId) fail(`step id not increasing (last ${this.lastStepId})`);
    this.lastStepId = batch.stepId;
    this.numExecutedSteps++;

    // Swap-outs read blocks before anything else: a swapped-out sequence is released in this
    // step and its blocks may be reused by it.
    for (const swap of batch.swapOuts ?? []) {
      if (!batch.releasedSeqIds.includes(swap.seqId)) fail(`swapped-out seq ${swap.seqId} not released`);
      this.swapOut(swap, fail);
    }
    // Releases next: a block freed by a released sequence may be reused in this very batch.
    for (const seqId of batch.releasedSeqIds) {
      const seq = this.live.get(seqId) ?? fail(`release of unknown seq ${seqId}`);
      for (let b = 0; b < this.numBlocks; b++)
        if (this.blockHolder[b] === seq.incarnation) this.blockHolder[b] = NO_HOLDER;
      this.live.delete(seqId);
    }
    for (const { seqId, sampling } of batch.addedSeqs) {
      if (this.live.has(seqId)) fail(`seq ${seqId} added twice`);
      this.live.set(seqId, {
        incarnation: this.nextIncarnation++,
        sampling: { ...sampling },
        numComputedTokens: 0,
        lastSampledTokenId: null,
        isStale: false,
      });
    }

    const liveSeq = (seqId: number, what: string): LiveSeq => {
      const seq = this.live.get(seqId) ?? fail(`${what} of seq ${seqId}, which is not added`);
      if (seq.isStale) fail(`${what} of seq ${seqId}, whose KV a phase switch dropped (not re-added)`);
      return seq;
    };
    for (const swap of batch.swapIns ?? []) {
      this.copyFromHost(swap, liveSeq(swap.seqId, 'swap-in'), fail);
      this.numSwapIns++;
    }
    let numKvTokens = 0;
    for (const swap of batch.prefetches ?? []) {
      if (batch.seqs.some((row) => row.seqId === swap.seqId))
        fail(`seq ${swap.seqId} computes in the step that prefetches it`);
      this.copyFromHost(swap, liveSeq(swap.seqId, 'prefetch'), fail);
      this.numPrefetches++;
      numKvTokens += swap.numTokens;
    }

    const seen = new Set<number>();
    const sampled: StepResult['sampled'] = [];
    for (const stepSeq of batch.seqs) {
      const { seqId, tokenIds, startPos, blockTable } = stepSeq;
      if (seen.has(seqId)) fail(`seq ${seqId} twice in one batch`);
      seen.add(seqId);
      const seq = this.live.get(seqId) ?? fail(`seq ${seqId} not added`);
      if (seq.isStale) fail(`seq ${seqId} computes after a phase switch dropped its KV (not re-added)`);
      if (tokenIds.length === 0) fail(`seq ${seqId} has no tokens`);
      if (startPos !== seq.numComputedTokens) {
        fail(`seq ${seqId} startPos ${startPos}, but ${seq.numComputedTokens} tokens are cached`);
      }
      const end = startPos + tokenIds.length;
      if (blockTable.length !== Math.ceil(end / this.blockSize)) {
        fail(`seq ${seqId} block table has ${blockTable.length} blocks for ${end} positions`);
      }
      for (const blockId of blockTable) this.claimBlock(blockId, seq.incarnation, fail);
      for (let i = 0; i < tokenIds.length; i++) {
        const slot = this.slotOf(blockTable, startPos + i);
        this.slotToken[slot] = tokenIds[i];
        this.slotIncarnation[slot] = seq.incarnation;
        this.slotPosition[slot] = startPos + i;
      }
      // The token sampled last step must come back as this step's first input.
      if (seq.lastSampledTokenId !== null && tokenIds[0] !== seq.lastSampledTokenId) {
        fail(`seq ${seqId} feeds token ${tokenIds[0]}, but ${seq.lastSampledTokenId} was sampled`);
      }
      seq.lastSampledTokenId = null;
      seq.numComputedTokens = end;
      if (!stepSeq.isSampled) continue;

      const context: number[] = [];
      for (let p = 0; p < end; p++) {
        const slot = this.slotOf(blockTable, p);
        if (this.slotIncarnation[slot] !== seq.incarnation || this.slotPosition[slot] !== p) {
          fail(`seq ${seqId} reads position ${p} from a slot it did not write`);
        }
        context.push(this.slotToken[slot]);
      }
      this.numSlotReads += end;
      const tokenId = hashNextToken(context, seq.sampling, stepSeq.outputIndex, this.vocabSize);
      seq.lastSampledTokenId = tokenId;
      sampled.push({ seqId, tokenId });
    }
    // Write-backs copy what the step's compute left in the cache.
    for (const swap of batch.kvWriteBacks ?? []) {
      this.copyToHost(swap, liveSeq(swap.seqId, 'write-back'), 'write-back', fail);
      this.numWriteBacks++;
      numKvTokens += swap.numTokens;
    }
    const result: StepResult = { stepId: batch.stepId, sampled };
    if (batch.prefetches || batch.kvWriteBacks) {
      const prefetchTokens = (batch.prefetches ?? []).reduce((sum, swap) => sum + swap.numTokens, 0);
      result.kvTimings = {
        computeMs: 0,
        prefetchWaitMs: 0,
        prefetchMs: prefetchTokens * this.kvMsPerToken,
        writeBackMs: (numKvTokens - prefetchTokens) * this.kvMsPerToken,
        writeBackWaitMs: 0,
      };
    }
    return result;
  }

  private claimBlock(blockId: number, incarnation: number, fail: (why: string) => never): void {
    if (!Number.isInteger(blockId) || blockId < 0 || blockId >= this.numBlocks) fail(`bad block ${blockId}`);
    const holder = this.blockHolder[blockId];
    if (holder !== NO_HOLDER && holder !== incarnation) fail(`block ${blockId} held by two live seqs`);
    if (holder === NO_HOLDER) {
      const previous = this.lastBlockHolder[blockId];
      if (previous !== NO_HOLDER && previous !== incarnation) this.numBlockReuses++;
      this.lastBlockHolder[blockId] = incarnation;
    }
    this.blockHolder[blockId] = incarnation;
  }

  private checkSwapShape(swap: StepKvSwap, fail: (why: string) => never): void {
    const numBlocks = Math.ceil(swap.numTokens / this.blockSize);
    if (swap.blockIds.length !== numBlocks || swap.slotIds.length !== numBlocks)
      fail(`swap of seq ${swap.seqId}: ${swap.numTokens} tokens need ${numBlocks} blocks and slots`);
    for (const slotId of swap.slotIds) {
      if (!Number.isInteger(slotId) || slotId < 0 || slotId >= this.numHostSlots)
        fail(`swap of seq ${swap.seqId}: bad host slot ${slotId}`);
    }
  }

  /** Copies every computed position of a live sequence into free host slots. */
  private swapOut(swap: StepKvSwap, fail: (why: string) => never): void {
    const seq = this.live.get(swap.seqId) ?? fail(`swap-out of unknown seq ${swap.seqId}`);
    if (seq.isStale) fail(`swap-out of seq ${swap.seqId}, whose KV a phase switch dropped`);
    this.copyToHost(swap, seq, 'swap-out', fail);
    this.numSwapOuts++;
  }

  private copyToHost(swap: StepKvSwap, seq: LiveSeq, what: string, fail: (why: string) => never): void {
    const { seqId, blockIds, slotIds, numTokens } = swap;
    this.checkSwapShape(swap, fail);
    if (numTokens !== seq.numComputedTokens)
      fail(`${what} of seq ${seqId}: ${numTokens} tokens, but ${seq.numComputedTokens} are cached`);
    // A slot may still hold data the scheduler freed without reading it back (a sequence that
    // finished after its write-back): overwriting is allowed, and a wrong overwrite shows at the
    // read, which checks that the slot holds the reader's own position.
    slotIds.forEach((slotId, i) => {
      const firstPosition = i * this.blockSize;
      const tokens: number[] = [];
      for (let p = firstPosition; p < Math.min(numTokens, firstPosition + this.blockSize); p++) {
        const slot = this.slotOf(blockIds, p);
        if (this.slotIncarnation[slot] !== seq.incarnation || this.slotPosition[slot] !== p)
          fail(`${what} of seq ${seqId} reads position ${p} from a slot it did not write`);
        tokens.push(this.slotToken[slot]);
      }
      this.hostSlots.set(slotId, { seqId, firstPosition, tokens });
    });
  }

  /** Refills a freshly added sequence's blocks from its host slots (swap-in or prefetch); they become free. */
  private copyFromHost(swap: StepKvSwap, seq: LiveSeq, fail: (why: string) => never): void {
    const { seqId, blockIds, slotIds, numTokens } = swap;
    this.checkSwapShape(swap, fail);
    if (seq.numComputedTokens !== 0) fail(`swap-in of seq ${seqId}, which already has tokens cached`);
    for (const blockId of blockIds) this.claimBlock(blockId, seq.incarnation, fail);
    for (let p = 0; p < numTokens; p++) {
      const slotId = slotIds[Math.floor(p / this.blockSize)];
      const host = this.hostSlots.get(slotId);
      if (!host || host.seqId !== seqId || host.firstPosition !== p - (p % this.blockSize))
        fail(`swap-in of seq ${seqId}: host slot ${slotId} does not hold its position ${p}`);
      const token =
        host!.tokens[p % this.blockSize] ?? fail(`swap-in of seq ${seqId}: position ${p} unwritten`);
      const slot = this.slotOf(blockIds, p);
      this.slotToken[slot] = token;
      this.slotIncarnation[slot] = seq.incarnation;
      this.slotPosition[slot] = p;
    }
    for (const slotId of slotIds) this.hostSlots.delete(slotId);
    seq.numComputedTokens = numTokens;
  }

  private slotOf(blockTable: readonly number[], position: number): number {
    return blockTable[Math.floor(position / this.blockSize)] * this.blockSize + (position % this.blockSize);
  }
}
