/**
 * The pieces of a replica's switch between its two layouts (ReplicaDevice.switchTo) that need
 * no replica state: the planner it asks, the check on the plan, each device's reshard message,
 * and what a switch reports.
 */
import type { DeviceReshardPlan, ParallelConfig, ReshardPlan } from '@seesaw/model';
import type { Reshard, ReshardDone } from '@seesaw/protocol';
import type { Phase, ReshardStats } from '../seesaw-engine.ts';
import type { DeviceClock } from './device-clock.ts';
import { layoutIndex } from './replica-layouts.ts';

/** The plan for one replica from one layout to the other (pure; the same for every replica). */
export type ReshardPlanner = (from: ParallelConfig, to: ParallelConfig) => ReshardPlan;

/** What switchTo reports: the engine's figures plus every device's own answer (for traces). */
export interface ReplicaReshardStats extends ReshardStats {
  from: ParallelConfig;
  to: ParallelConfig;
  /** Bytes devices received from peers (the rest of bytesMoved came from the host). */
  bytesFromPeers: number;
  /** By local device index; startMs / endMs mapped onto the coordinator's epoch clock. */
  devices: ReshardDone[];
}

/** A device's reshardDone with its start and end mapped onto the coordinator's clock (dropped when unknown). */
export function reshardDoneOnCoordinatorClock(
  done: ReshardDone,
  clock: DeviceClock | undefined,
): ReshardDone {
  const { startMs, endMs, ...rest } = done;
  if (!clock || startMs === undefined || endMs === undefined) return rest;
  return { ...rest, startMs: clock.toCoordinatorMs(startMs), endMs: clock.toCoordinatorMs(endMs) };
}

export function reshardMessage(
  reshardId: number,
  phase: Phase,
  plan: DeviceReshardPlan,
  isWeightDigestReturned: boolean | undefined,
): Omit<Reshard, 'tag'> {
  const message: Omit<Reshard, 'tag'> = { reshardId, layout: layoutIndex(phase), plan };
  if (isWeightDigestReturned) message.isWeightDigestReturned = true;
  return message;
}

export function checkReshardPlan(plan: ReshardPlan, numDevices: number): void {
  const ok = plan.devices.length === numDevices && plan.devices.every((d, i) => d.device === i);
  if (!ok) {
    throw new Error(
      `re-shard plan covers devices [${plan.devices.map((d) => d.device).join(', ')}], ` +
        `expected 0..${numDevices - 1} in order`,
    );
  }
}
