import type { Phase, ReplicaExecutor, ReshardStats, TraceEvent } from '@seesaw/coordinator';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import type { DeviceProfile } from './hardware.ts';
import { KvFirstTouch } from './kv-first-touch.ts';
import type { ModelCosts } from './model-costs.ts';
import { PipelineTimeline } from './pipeline-timeline.ts';
import type { ReplicaLayout } from './replica-layout.ts';
import type { ReshardEstimate } from './reshard-cost.ts';
import { batchShapeOf, stepStageSeconds } from './step-cost.ts';
import type { VirtualClock } from './virtual-clock.ts';

export interface SimulatedReplicaExecutorOptions {
  costs: ModelCosts;
  device: DeviceProfile;
  blockSize: number;
  /** [static layout] or [prefill layout, decode layout]. */
  layouts: readonly ReplicaLayout[];
  /** Device KV blocks per layout. */
  numKvBlocks: readonly number[];
  /** The scheduler's phase at the start (null: static). */
  startPhase: Phase | null;
  /** Seesaw only: the cost of switching from layout `from` to layout `to`. */
  reshard?: (from: number, to: number) => ReshardEstimate;
  clock: VirtualClock;
  /** Events go here when given (simulated ms). */
  trace: TraceEvent[] | null;
  track: string;
}

const layoutIndexOf = (phase: Phase | null): number => (phase === 'decode' ? 1 : 0);

/** Every sequence computes one token and samples: pure decode (as the engine's isDecodeOnly). */
const isDecodeBatch = (batch: StepBatch): boolean =>
  batch.seqs.every((seq) => seq.tokenIds.length === 1 && seq.isSampled);

/**
 * A replica that runs no model: each step answers at the simulated time the cost model gives
 * (its stages through the layout's pipeline, after the prefetches of its sequences landed, with
 * the host link's write-backs and swaps), and a switch takes the re-shard estimate's time.
 * Tokens are dummies: every sampled token is 1 (requests ignore EOS, so output lengths are the
 * workload's). The engine core drives it exactly as a real replica: pp steps in flight.
 */
export class SimulatedReplicaExecutor implements ReplicaExecutor {
  readonly blockSize: number;
  numSwitches = 0;
  private readonly options: SimulatedReplicaExecutorOptions;
  private phase: Phase | null;
  private layoutIndex: number;
  private pipeline: PipelineTimeline;
  /** Prefetch completion per sequence, consumed by the first step that contains it. */
  private readonly prefetchDone = new Map<number, number>();
  private hostLinkFree = 0;
  /** Per layout: the KV blocks its devices have written (their first write costs page faults). */
  private readonly kvTouched: KvFirstTouch[];
  /**
   * The host KV slots written so far: the kv-store's slot memory is mapped lazily as well, so a
   * write-back or swap-out into a slot never written pays the first touch (a slot holds a
   * block's tokens over every layer and KV head; ids count like block ids).
   */
  private readonly hostSlotsTouched: KvFirstTouch;

  constructor(options: SimulatedReplicaExecutorOptions) {
    this.options = options;
    this.blockSize = options.blockSize;
    this.phase = options.startPhase;
    this.layoutIndex = layoutIndexOf(options.startPhase);
    this.pipeline = new PipelineTimeline(this.layout.parallel.pp, options.clock.now);
    this.kvTouched = options.layouts.map(() => new KvFirstTouch(options.blockSize));
    this.hostSlotsTouched = new KvFirstTouch(options.blockSize);
    if (options.layouts.length > 1 && !options.reshard)
      throw new Error('a simulated replica with two layouts needs a re-shard estimate');
  }

  private get layout(): ReplicaLayout {
    return this.options.layouts[this.layoutIndex];
  }

  get numKvBlocks(): number {
    return this.options.numKvBlocks[this.layoutIndex];
  }

  get maxConcurrentBatches(): number {
    return this.layout.parallel.pp;
  }

  async execute(batch: StepBatch): Promise<StepResult> {
    const { clock } = this.options;
    const now = clock.now;
    const stageSeconds = this.stageSeconds(batch);
    let ready = now;
    for (const seq of batch.seqs) {
      const done = this.prefetchDone.get(seq.seqId);
      if (done === undefined) continue;
      this.prefetchDone.delete(seq.seqId);
      ready = Math.max(ready, done);
    }
    const waitSeconds = Math.max(0, ready - Math.max(now, this.pipeline.firstStageFree()));
    const { start, end } = this.pipeline.run(ready, stageSeconds);
    this.queuePrefetches(batch, now);
    this.traceStep(batch, start, end, ready, waitSeconds);
    await clock.at(end);
    const sampled: StepResult['sampled'] = [];
    for (const seq of batch.seqs) if (seq.isSampled) sampled.push({ seqId: seq.seqId, tokenId: 1 });
    return {
      stepId: batch.stepId,
      sampled,
      kvTimings: {
        computeMs: (end - start) * 1000,
        prefetchWaitMs: waitSeconds * 1000,
        prefetchMs: 0,
        writeBackMs: 0,
        writeBackWaitMs: 0,
      },
    };
  }

  async switchTo(phase: Phase): Promise<ReshardStats> {
    const { clock, trace, track } = this.options;
    const next = layoutIndexOf(phase);
    const estimate = this.options.reshard!(this.layoutIndex, next);
    trace?.push({
      track: `${track} reshard`,
      name: `reshard to ${phase}`,
      category: 'reshard',
      startMs: clock.now * 1000,
      durationMs: estimate.seconds * 1000,
      args: { bytesMoved: estimate.bytesMoved, bytesFromHost: estimate.bytesFromHost, route: estimate.route },
    });
    this.numSwitches++;
    await clock.at(clock.now + estimate.seconds);
    this.phase = phase;
    this.layoutIndex = next;
    this.pipeline = new PipelineTimeline(this.layout.parallel.pp, clock.now);
    this.hostLinkFree = Math.max(this.hostLinkFree, clock.now);
    return {
      ms: estimate.seconds * 1000,
      bytesMoved: estimate.bytesMoved,
      bytesFromHost: estimate.bytesFromHost,
      numKvBlocks: this.numKvBlocks,
      route: estimate.route,
    };
  }

  /** Each stage's time for the batch, with its write-backs and swaps on the host link. */
  private stageSeconds(batch: StepBatch): number[] {
    const { costs, device } = this.options;
    const layout = this.layout;
    const stageSeconds = stepStageSeconds(costs, device, layout, batchShapeOf(batch));
    const hostRate = (device.kvTransferLink ?? device.hostLink).bytesPerSecond;
    // A CPU device has no copy engine: the puts' work shares the cores with compute.
    const isWriteBackSerial = device.cpuKernels !== undefined;
    // Write-backs overlap the step's layers; the step answers after the last layer's puts.
    const writeBackTokens = sumTokens(batch.kvWriteBacks);
    const swapTokens = sumTokens(batch.swapOuts) + sumTokens(batch.swapIns);
    // Blocks written for the first time, by this step's forward or its swap-ins (before it).
    const touched = this.kvTouched[this.layoutIndex];
    const freshBlocks =
      touched.newBlocksOfStep(batch) +
      (batch.swapIns ?? []).reduce((sum, swap) => sum + touched.newBlocksOf(swap.blockIds), 0);
    // Host slots written for the first time by this step's write-backs and swap-outs: the
    // kv-store thread shares the cores, so each stage pays its devices' share, as for the puts.
    const freshSlots = [...(batch.kvWriteBacks ?? []), ...(batch.swapOuts ?? [])].reduce(
      (sum, swap) => sum + this.hostSlotsTouched.newBlocksOf(swap.slotIds),
      0,
    );
    const aheadSeconds = this.touchAheadSeconds(batch);
    layout.stages.forEach((stage, s) => {
      stageSeconds[s] += aheadSeconds;
      stageSeconds[s] += this.firstTouchSeconds(freshBlocks + freshSlots, stage.kvBytesPerTokenPerDevice);
      if (writeBackTokens > 0) {
        const seconds = (writeBackTokens * stage.kvBytesPerTokenPerDevice) / hostRate;
        stageSeconds[s] = isWriteBackSerial
          ? stageSeconds[s] + seconds
          : Math.max(stageSeconds[s], seconds) + seconds / stage.numLayers;
      }
      if (swapTokens > 0) stageSeconds[s] += (swapTokens * stage.kvBytesPerTokenPerDevice) / hostRate;
    });
    return stageSeconds;
  }

  /**
   * A Seesaw device's write-backs under its load layout also touch the other layout's blocks the
   * written-back sequences will be prefetched into (their tokens and the next one), on the
   * device's thread after the step's layers (gpu-actor kv-touch-ahead.ts): seconds per device.
   */
  private touchAheadSeconds(batch: StepBatch): number {
    const { layouts } = this.options;
    if (layouts.length < 2 || this.layoutIndex !== 0 || !batch.kvWriteBacks?.length) return 0;
    const blocks = batch.kvWriteBacks.reduce(
      (sum, swap) => sum + Math.ceil((swap.numTokens + 1) / this.blockSize),
      0,
    );
    const other = layouts[1];
    const kvPerToken = Math.max(...other.stages.map((stage) => stage.kvBytesPerTokenPerDevice));
    return this.firstTouchSeconds(this.kvTouched[1].newBlocksAhead(blocks), kvPerToken);
  }

  /** Seconds a device of a stage spends on its first writes into `blocks` KV blocks. */
  private firstTouchSeconds(blocks: number, kvBytesPerTokenPerDevice: number): number {
    const rate = this.options.device.kvFirstTouchBytesPerSecond;
    return rate === undefined || blocks === 0
      ? 0
      : (blocks * this.blockSize * kvBytesPerTokenPerDevice) / rate;
  }

  /**
   * Prefetches queue on the host link (each device pulls its share at once); the kv-store
   * writes them into the device's cache, paying the first touch of blocks never written before.
   */
  private queuePrefetches(batch: StepBatch, now: number): void {
    const { device, trace, track } = this.options;
    const kvLink = device.kvTransferLink ?? device.hostLink;
    const maxKvPerToken = Math.max(...this.layout.stages.map((stage) => stage.kvBytesPerTokenPerDevice));
    for (const swap of batch.prefetches ?? []) {
      const begin = Math.max(now, this.hostLinkFree);
      const firstTouch = this.firstTouchSeconds(
        this.kvTouched[this.layoutIndex].newBlocksOf(swap.blockIds),
        maxKvPerToken,
      );
      this.hostLinkFree =
        begin + kvLink.latencySeconds + (swap.numTokens * maxKvPerToken) / kvLink.bytesPerSecond + firstTouch;
      this.prefetchDone.set(swap.seqId, this.hostLinkFree);
      trace?.push({
        track: `${track} kv`,
        name: 'prefetch',
        category: 'kv',
        startMs: begin * 1000,
        durationMs: (this.hostLinkFree - begin) * 1000,
        args: { seqId: swap.seqId, numTokens: swap.numTokens },
      });
    }
  }

  private traceStep(batch: StepBatch, start: number, end: number, ready: number, waitSeconds: number): void {
    const { trace, track } = this.options;
    if (!trace) return;
    const phase = this.phase ?? (isDecodeBatch(batch) ? 'decode' : 'prefill');
    if (waitSeconds > 0) {
      trace.push({
        track,
        name: 'prefetch wait',
        category: 'wait',
        startMs: (ready - waitSeconds) * 1000,
        durationMs: waitSeconds * 1000,
      });
    }
    trace.push({
      track,
      name: `step ${batch.stepId}`,
      category: phase,
      startMs: start * 1000,
      durationMs: (end - start) * 1000,
      args: {
        numTokens: batch.seqs.reduce((sum, seq) => sum + seq.tokenIds.length, 0),
        numSeqs: batch.seqs.length,
        phase,
      },
    });
    const writeBackTokens = sumTokens(batch.kvWriteBacks);
    if (writeBackTokens > 0) {
      trace.push({
        track: `${track} kv`,
        name: 'write-back',
        category: 'kv',
        startMs: start * 1000,
        durationMs: (end - start) * 1000,
        args: { numTokens: writeBackTokens },
      });
    }
  }
}

function sumTokens(swaps: readonly { numTokens: number }[] | undefined): number {
  let sum = 0;
  for (const swap of swaps ?? []) sum += swap.numTokens;
  return sum;
}
