/**
 * The largest device memory a Seesaw run needed, seen from the driver's side: a PhasedDevice
 * wrapper that reads every switch's per-device answers (weights, KV cache, and the transient
 * old + new weights a device held while re-sharding). The peak counts the old layout's KV cache
 * on top of the transient weights: a device may still hold it while the new weights arrive.
 */
import type { Phase, PhasedDevice, ReshardStats } from '@seesaw/coordinator';
import type { StepBatch, StepResult } from '@seesaw/protocol';

/** One device's memory after a switch (ReshardDone's fields). */
export interface DeviceMemoryAnswer {
  weightBytes: number;
  kvCacheBytes: number;
  peakWeightBytes: number;
}

export class PeakDeviceMemory {
  private peak = 0;
  /** Each device's KV cache bytes in the current layout (by local index), once known. */
  private kvCacheBytes: number[] = [];

  /** Starts from a layout where each of numDevices devices holds (weight + KV) bytes on average. */
  constructor(numDevices: number, initial: { weightBytes: number; kvCacheBytes: number }) {
    this.peak = (initial.weightBytes + initial.kvCacheBytes) / numDevices;
    this.kvCacheBytes = Array.from({ length: numDevices }, () => initial.kvCacheBytes / numDevices);
  }

  get bytes(): number {
    return Math.round(this.peak);
  }

  observeSwitch(devices: readonly DeviceMemoryAnswer[]): void {
    devices.forEach((device, index) => {
      const oldKv = this.kvCacheBytes[index] ?? 0;
      this.peak = Math.max(
        this.peak,
        device.weightBytes + device.kvCacheBytes,
        device.peakWeightBytes + oldKv,
      );
      this.kvCacheBytes[index] = device.kvCacheBytes;
    });
  }
}

function isMemoryAnswer(value: unknown): value is DeviceMemoryAnswer {
  const answer = value as Partial<DeviceMemoryAnswer> | null;
  return (
    typeof answer?.weightBytes === 'number' &&
    typeof answer.kvCacheBytes === 'number' &&
    typeof answer.peakWeightBytes === 'number'
  );
}

/**
 * `device` with every switch's per-device answers fed into `peak`. Answers without the memory
 * fields (a device double that reports only timings) leave the peak as it was.
 */
export function watchPeakMemory(device: PhasedDevice, peak: PeakDeviceMemory): PhasedDevice {
  return {
    get blockSize() {
      return device.blockSize;
    },
    get numKvBlocks() {
      return device.numKvBlocks;
    },
    get numDecodeKvBlocks() {
      return device.numDecodeKvBlocks;
    },
    get phase() {
      return device.phase;
    },
    get maxInFlight() {
      return device.maxInFlight;
    },
    get queuesSteps() {
      return device.queuesSteps;
    },
    get deviceRoles() {
      return device.deviceRoles;
    },
    execute: (batch: StepBatch): Promise<StepResult> => device.execute(batch),
    switchTo: async (phase: Phase): Promise<ReshardStats> => {
      const stats = await device.switchTo(phase);
      const answers: unknown[] = stats.devices ?? [];
      if (answers.length > 0 && answers.every(isMemoryAnswer)) peak.observeSwitch(answers);
      return stats;
    },
  };
}
