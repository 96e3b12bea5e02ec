import type { StepBatch, StepResult } from '@seesaw/protocol';
import type { PhasedDevice, ReshardStats } from '../src/seesaw-engine.ts';
import type { Phase } from '../src/step-scheduler.ts';
import { HashingTestDevice, type HashingTestDeviceOptions } from './hashing-test-device.ts';

export interface HashingPhasedDeviceOptions extends Omit<HashingTestDeviceOptions, 'numKvBlocks'> {
  /** Device KV blocks of each layout. */
  numKvBlocks: Record<Phase, number>;
  /** Steps each layout takes at once (its pp); default 1. */
  maxInFlight?: Partial<Record<Phase, number>>;
  /** Declares queuesSteps: a layout with pp > 1 then takes pp + 1 steps at once. */
  queuesSteps?: boolean;
  /** Reported per switch (ReshardStats.ms / bytesMoved); default 0. */
  reshardMs?: number;
  reshardBytes?: number;
  /** Tells numDecodeKvBlocks up front, as device workers do at load; default: not known before the switch. */
  announcesDecodeKvBlocks?: boolean;
}

/**
 * A PhasedDevice test double over HashingTestDevice: switchTo() re-creates the KV cache with the
 * new layout's block count and nothing in it (host slots survive), so a scheduler that relies on
 * device KV surviving a switch produces wrong tokens or trips the device's checks. It also
 * rejects a switch with steps pending and more steps in flight than the layout takes (its pp, one
 * more with queuesSteps).
 */
export class HashingPhasedDevice implements PhasedDevice {
  readonly device: HashingTestDevice;
  /** Phases entered by switches, in order. */
  readonly switches: Phase[] = [];
  private phaseNow: Phase = 'prefill';
  private numPending = 0;
  private readonly numKvBlocksOf: Record<Phase, number>;
  private readonly maxInFlightOf: Record<Phase, number>;

  constructor(private readonly options: HashingPhasedDeviceOptions) {
    this.numKvBlocksOf = { ...options.numKvBlocks };
    this.maxInFlightOf = { prefill: 1, decode: 1, ...options.maxInFlight };
    this.device = new HashingTestDevice({ ...options, numKvBlocks: this.numKvBlocksOf.prefill });
  }

  get phase(): Phase {
    return this.phaseNow;
  }

  get blockSize(): number {
    return this.device.blockSize;
  }

  get numKvBlocks(): number {
    return this.device.numKvBlocks;
  }

  get numDecodeKvBlocks(): number | undefined {
    return this.options.announcesDecodeKvBlocks ? this.numKvBlocksOf.decode : undefined;
  }

  get maxInFlight(): number {
    return this.maxInFlightOf[this.phaseNow];
  }

  get queuesSteps(): boolean {
    return this.options.queuesSteps ?? false;
  }

  /** Most steps pending at once so far, per phase. */
  readonly peakPending: Record<Phase, number> = { prefill: 0, decode: 0 };

  async execute(batch: StepBatch): Promise<StepResult> {
    const pp = this.maxInFlight;
    const numTaken = this.queuesSteps && pp > 1 ? pp + 1 : pp;
    if (this.numPending >= numTaken)
      throw new Error(
        `step ${batch.stepId}: ${this.numPending} steps pending, the ${this.phaseNow} layout takes ${numTaken}`,
      );
    this.numPending++;
    this.peakPending[this.phaseNow] = Math.max(this.peakPending[this.phaseNow], this.numPending);
    try {
      return await this.device.execute(batch);
    } finally {
      this.numPending--;
    }
  }

  async switchTo(phase: Phase): Promise<ReshardStats> {
    if (phase === this.phaseNow) throw new Error(`already in the ${phase} layout`);
    if (this.numPending > 0) throw new Error(`switch to ${phase} with ${this.numPending} steps pending`);
    await Promise.resolve();
    this.device.dropDeviceKv(this.numKvBlocksOf[phase]);
    this.phaseNow = phase;
    this.switches.push(phase);
    return {
      ms: this.options.reshardMs ?? 0,
      bytesMoved: this.options.reshardBytes ?? 0,
      bytesFromHost: 0,
      numKvBlocks: this.device.numKvBlocks,
      route: 'test',
    };
  }
}
