/**
 * One data-parallel replica: the tp * pp device actors that together hold one copy of the model,
 * driven as one ExecutionDevice. Every actor gets every step, in the same order; the last stage's
 * TP rank 0 answers. Any actor's failure fails the replica: its pending steps and all later ones
 * reject with that error (re-planning around a lost device is not done here).
 */
import type { Ready, StepBatch, StepResult } from '@seesaw/protocol';
import type { ExecutionDevice } from '../engine.ts';
import type { DeviceActorHandle } from './device-actor-handle.ts';

export class ReplicaDevice implements ExecutionDevice {
  readonly numKvBlocks: number;
  /** Weight and KV cache bytes over all the replica's devices. */
  readonly weightBytes: number;
  readonly kvCacheBytes: number;
  private readonly pending = new Map<number, (error: Error) => void>();
  private failureError: Error | undefined;

  /** `actors[ppStage][tpRank]` with their ready messages in the same layout. */
  constructor(
    readonly dpRank: number,
    readonly actors: DeviceActorHandle[][],
    ready: Ready[][],
    readonly blockSize: number,
  ) {
    const all = ready.flat();
    this.numKvBlocks = Math.min(...all.map((r) => r.numKvBlocks));
    this.weightBytes = all.reduce((sum, r) => sum + r.weightBytes, 0);
    this.kvCacheBytes = all.reduce((sum, r) => sum + r.kvCacheBytes, 0);
    for (const actor of actors.flat()) actor.onFailure((error) => this.fail(error));
  }

  get failure(): Error | undefined {
    return this.failureError;
  }

  execute(batch: StepBatch): Promise<StepResult> {
    if (this.failureError) return Promise.reject(this.failureError);
    const answering = this.actors[this.actors.length - 1][0];
    const answer = answering.expectStep(batch.stepId);
    for (const stage of this.actors) for (const actor of stage) actor.postStep(batch);
    return new Promise<StepResult>((resolve, reject) => {
      this.pending.set(batch.stepId, reject);
      answer.then(resolve, reject).finally(() => this.pending.delete(batch.stepId));
    });
  }

  private fail(error: Error): void {
    if (this.failureError) return;
    this.failureError = error;
    for (const reject of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
