/**
 * The re-shard planner's link model: every device has a host->device ingress link, a peer
 * ingress link and a peer egress link, each a queue that pieces occupy for
 * latency + bytes / rate seconds. A peer piece occupies its receiver's ingress and its sender's
 * egress; a device's modelled time is its busiest queue.
 */

import { ReshardPlanError } from './reshard-intersect.ts';
import type { PieceSource } from './reshard-plan.ts';

export interface ReshardLinkRates {
  /** device <-> device. */
  p2pBytesPerSecond: number;
  /** host memory -> device. */
  hostBytesPerSecond: number;
  /** Per piece. */
  p2pLatencySeconds?: number;
  hostLatencySeconds?: number;
}

/** Modelled busy time of every device's links while pieces are assigned. */
export class LinkQueues {
  readonly hostIn: number[];
  readonly peerIn: number[];
  readonly peerOut: number[];

  constructor(
    numDevices: number,
    private readonly rates: Required<ReshardLinkRates>,
  ) {
    this.hostIn = new Array<number>(numDevices).fill(0);
    this.peerIn = new Array<number>(numDevices).fill(0);
    this.peerOut = new Array<number>(numDevices).fill(0);
  }

  peerSeconds(bytes: number): number {
    return this.rates.p2pLatencySeconds + bytes / this.rates.p2pBytesPerSecond;
  }

  hostSeconds(bytes: number): number {
    return this.rates.hostLatencySeconds + bytes / this.rates.hostBytesPerSecond;
  }

  /** When a piece would have arrived if queued now from `source` to `device`. */
  finishTime(device: number, source: PieceSource, bytes: number): number {
    if (source.kind === 'host') return this.hostIn[device]! + this.hostSeconds(bytes);
    if (source.kind === 'peer') {
      const t = this.peerSeconds(bytes);
      return Math.max(this.peerIn[device]! + t, this.peerOut[source.device]! + t);
    }
    return 0;
  }

  add(device: number, source: PieceSource, bytes: number): void {
    if (source.kind === 'host') this.hostIn[device]! += this.hostSeconds(bytes);
    if (source.kind === 'peer') {
      const t = this.peerSeconds(bytes);
      this.peerIn[device]! += t;
      this.peerOut[source.device]! += t;
    }
  }

  deviceSeconds(device: number): number {
    return Math.max(this.hostIn[device]!, this.peerIn[device]!, this.peerOut[device]!);
  }
}

export function checkRates(rates: ReshardLinkRates): Required<ReshardLinkRates> {
  const positive = (name: string, value: number): number => {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new ReshardPlanError(`re-shard link rate ${name} must be a positive finite number, got ${value}`);
    }
    return value;
  };
  const latency = (name: string, value: number | undefined): number => {
    if (value === undefined) return 0;
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new ReshardPlanError(`re-shard latency ${name} must be a finite number >= 0, got ${value}`);
    }
    return value;
  };
  return {
    p2pBytesPerSecond: positive('p2pBytesPerSecond', rates.p2pBytesPerSecond),
    hostBytesPerSecond: positive('hostBytesPerSecond', rates.hostBytesPerSecond),
    p2pLatencySeconds: latency('p2pLatencySeconds', rates.p2pLatencySeconds),
    hostLatencySeconds: latency('hostLatencySeconds', rates.hostLatencySeconds),
  };
}
