import { HostKvAllocator } from '@seesaw/kv-store';
import type { StepKvSwap } from '@seesaw/protocol';
import {
  DEFAULT_COMPUTE_FLOPS_PER_SECOND,
  DEFAULT_HOST_COPY_BYTES_PER_SECOND,
  DEFAULT_SWAP_LATENCY_SECONDS,
  type PreemptionMode,
  type SwapCostModel,
  shouldSwap,
} from './preemption-policy.ts';
import { numBlocksFor, type Sequence } from './sequence.ts';

/** Accounting view of one host's KV region (HostKvStore's slots, without the memory). */
export interface HostKvTierConfig {
  numSlots: number;
  /** Tokens per host slot: must equal the device's blockSize (one slot mirrors one block). */
  tokensPerSlot: number;
  /** Bytes of one slot (all layers, K and V, tokensPerSlot tokens): sizes swaps for the counters and 'auto'. */
  slotBytes: number;
}

/** Scheduler settings for preemption. */
export interface PreemptionSettings {
  /** The host KV tier preempted sequences can be swapped to; none means recompute only. */
  hostKv?: HostKvTierConfig;
  /** Default 'auto' with hostKv, else 'recompute' (the only mode without it). */
  preemptionMode?: PreemptionMode;
  /** Model parameters, for the 'auto' cost model (required by it). */
  numModelParams?: number;
  /** Recompute rate for 'auto', FLOP/s (default 150e9). */
  computeFlopsPerSecond?: number;
  /** Host copy bandwidth for 'auto', bytes/s (default 5e9). */
  hostCopyBytesPerSecond?: number;
  /** Fixed cost of one swap copy for 'auto', seconds (default 50e-6). */
  swapLatencySeconds?: number;
}

function positiveRate(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be positive, got ${value}`);
  return value;
}

function costModelOf(settings: PreemptionSettings, host: HostKvTierConfig): SwapCostModel {
  const latency = settings.swapLatencySeconds ?? DEFAULT_SWAP_LATENCY_SECONDS;
  if (!(Number.isFinite(latency) && latency >= 0))
    throw new RangeError(`swapLatencySeconds must be >= 0, got ${latency}`);
  return {
    numParams: positiveRate('numModelParams', settings.numModelParams ?? Number.NaN),
    kvBytesPerToken: host.slotBytes / host.tokensPerSlot,
    computeFlopsPerSecond: positiveRate(
      'computeFlopsPerSecond',
      settings.computeFlopsPerSecond ?? DEFAULT_COMPUTE_FLOPS_PER_SECOND,
    ),
    hostCopyBytesPerSecond: positiveRate(
      'hostCopyBytesPerSecond',
      settings.hostCopyBytesPerSecond ?? DEFAULT_HOST_COPY_BYTES_PER_SECOND,
    ),
    swapLatencySeconds: latency,
  };
}

/** The mode in force; throws on an unknown mode or a swapping mode without a host tier. */
export function preemptionModeOf(settings: PreemptionSettings): PreemptionMode {
  const mode = settings.preemptionMode ?? (settings.hostKv ? 'auto' : 'recompute');
  if (!['recompute', 'swap', 'auto'].includes(mode)) throw new RangeError(`unknown preemptionMode ${mode}`);
  if (!settings.hostKv && mode !== 'recompute')
    throw new RangeError(`preemptionMode '${mode}' needs a host KV tier (hostKv)`);
  return mode;
}

/**
 * The scheduler's side of the host KV tier: slot accounting (kv-store's HostKvAllocator)
 * and the swap-or-recompute choice. It plans swaps; the device moves the bytes.
 */
export class HostKvTier {
  readonly allocator: HostKvAllocator;
  private readonly costModel: SwapCostModel | null;

  constructor(
    config: HostKvTierConfig,
    private readonly blockSize: number,
    readonly mode: PreemptionMode,
    settings: PreemptionSettings,
  ) {
    if (config.tokensPerSlot !== blockSize)
      throw new RangeError(`hostKv.tokensPerSlot ${config.tokensPerSlot} must equal blockSize ${blockSize}`);
    this.allocator = new HostKvAllocator(config);
    this.costModel = mode === 'auto' ? costModelOf(settings, config) : null;
  }

  /** Bytes of KV in `numTokens` positions. */
  bytesOf(numTokens: number): number {
    return (numTokens * this.allocator.slotBytes) / this.allocator.tokensPerSlot;
  }

  /**
   * For a sequence being preempted with its computed positions still in its blocks: the
   * swap-out that keeps them in newly reserved host slots (recorded in seq.hostSlotIds), or
   * null when the policy recomputes (no room, too short to pay, or recompute mode).
   */
  trySwapOut(seq: Sequence): StepKvSwap | null {
    const numTokens = seq.numComputedTokens;
    const numSlots = this.allocator.slotsForTokens(numTokens);
    if (!shouldSwap(this.mode, this.costModel, numTokens, this.allocator.canReserve(numSlots))) return null;
    const reserved = this.allocator.reserve(seq.seqId, numSlots);
    if (!reserved.ok) throw new Error(`host KV accounting: ${reserved.reason}`);
    seq.hostSlotIds = reserved.slotIds;
    return {
      seqId: seq.seqId,
      blockIds: seq.blockIds.slice(0, numBlocksFor(numTokens, this.blockSize)),
      slotIds: [...reserved.slotIds],
      numTokens,
    };
  }

  /**
   * The swap-in that refills a readmitted sequence's first blocks (already allocated) from
   * its host slots. The slots go back to the pool now: the device reads them at the start of
   * this step, before any later step can write them (one step in flight; the scheduler
   * never both swaps in and out in one step).
   */
  swapIn(seq: Sequence): StepKvSwap {
    const numTokens = seq.numComputedTokens;
    const swap: StepKvSwap = {
      seqId: seq.seqId,
      blockIds: seq.blockIds.slice(0, numBlocksFor(numTokens, this.blockSize)),
      slotIds: seq.hostSlotIds,
      numTokens,
    };
    this.release(seq);
    return swap;
  }

  /** Frees the sequence's host slots, if it holds any. */
  release(seq: Sequence): void {
    if (seq.hostSlotIds.length === 0) return;
    const released = this.allocator.release(seq.seqId);
    if (!released.ok) throw new Error(`host KV accounting: ${released.reason}`);
    seq.hostSlotIds = [];
  }
}
