/** What a ReplicaDevice needs of each of its device actors. */
import type { Reshard, ReshardDone, StepBatch, StepKvTimings, StepResult } from '@seesaw/protocol';
import type { DeviceClock } from './device-clock.ts';

/** What the replica needs of a device actor (DeviceActorHandle, or a test double). */
export interface ReplicaActor {
  readonly name: string;
  postStep(batch: StepBatch): void;
  expectStep(stepId: number): Promise<StepResult>;
  /** A non-answering device's own KV report (DeviceActorHandle; test doubles may have none). */
  expectStepKv?(stepId: number): Promise<StepKvTimings>;
  /** The device's clock, to map its span times onto the coordinator's (epoch ms). */
  readonly clock?: DeviceClock;
  reshard(message: Omit<Reshard, 'tag'>): Promise<ReshardDone>;
  onFailure(listener: (error: Error) => void): void;
  /** Stops the actor at once (a lost replica's survivors); test doubles may have none. */
  close?(mode: 'abort'): Promise<void>;
}
