/**
 * One data-parallel replica: the N = tp * pp device actors that together hold one copy of the
 * model, driven as one device. It runs one parallel layout (a static replica) or two, 0 = prefill
 * and 1 = decode (Seesaw; tp0 * pp0 == tp1 * pp1). Local device index i is the same worker in
 * both; its (stage, TP rank) in a layout comes from deviceRanks. The same type drives local
 * worker threads and a remote host's devices (through their DeviceActorHandles).
 *
 * Steps go to every actor, in the current layout's arrangement; the last stage's TP rank 0
 * answers. Where the devices hold kv-store links, every other device also reports its own KV
 * timings for each step (stepKv), and the step settles once all are in, combined (combineStepKv).
 * switchTo (two layouts only) is a barrier: it refuses while a step is in flight, sends every
 * actor its part of the re-shard plan, and only once every `reshardDone` is back does the new
 * arrangement (and KV block count) take effect. Any actor's failure fails the replica: pending
 * and later steps and switches reject with it (replica-failure.ts: a failure that is not a loss
 * first waits a moment for a loss to explain it, as a lost replica is recoverable and a failed
 * one is not).
 */
import { deviceRanks, formatParallelConfig, type ParallelConfig } from '@seesaw/model';
import type { DeviceKvReport, ReshardDone, StepBatch, StepKvTimings, StepResult } from '@seesaw/protocol';
import type { Phase, PhasedDevice } from '../seesaw-engine.ts';
import { deviceKvReport } from './device-kv-report.ts';
import { formatBytes } from './format-bytes.ts';
import type { ReplicaActor } from './replica-actor.ts';
import { checkReplicaDeviceOptions, type ReplicaDeviceOptions } from './replica-device-options.ts';
import { ReplicaFailure } from './replica-failure.ts';
import { withHostSlots } from './replica-host-slots.ts';
import { arrange, deviceRolesOf, layoutIndex, oneReplica, PHASES } from './replica-layouts.ts';
import {
  checkReshardPlan,
  type ReplicaReshardStats,
  reshardDoneOnCoordinatorClock,
  reshardMessage,
} from './replica-reshard.ts';
import { combineStepKv, movedKv } from './step-kv-combine.ts';

export class ReplicaDevice implements PhasedDevice {
  readonly dpRank: number;
  readonly blockSize: number;
  /** By local device index. */
  readonly actors: readonly ReplicaActor[];
  private readonly layouts: readonly ParallelConfig[];
  private currentPhase: Phase = 'prefill';
  private arrangement: ReplicaActor[][];
  private numBlocks: number;
  /** What every device said at load its decode layout's cache will hold (the smallest), if all did. */
  private readonly decodeBlocksPromised: number | undefined;
  private figures: { weightBytes: number; kvCacheBytes: number };
  private digests: Array<string | undefined>;
  private readonly pending = new Map<number, (error: Error) => void>();
  private isSwitching = false;
  private nextReshardId = 1;
  /** Settles the replica's failure: pending and later steps and switches reject with it. */
  private readonly failures = new ReplicaFailure((error) => {
    for (const reject of this.pending.values()) reject(error);
    this.pending.clear();
  });
  private lastDone: ReshardDone[] = [];
  private readonly rolesByPhase: Record<Phase, readonly string[]>;
  /** Every device reports its own KV timings for each step (its devices hold kv-store links). */
  private readonly isKvReportedByAll: boolean;

  constructor(private readonly options: ReplicaDeviceOptions) {
    const { actors, layouts, ready } = options;
    checkReplicaDeviceOptions(options);
    this.dpRank = options.dpRank;
    this.blockSize = options.blockSize;
    this.actors = actors;
    this.layouts = layouts;
    this.arrangement = arrange(layouts[0], actors);
    this.rolesByPhase = {
      prefill: deviceRolesOf(layouts[0]),
      decode: deviceRolesOf(layouts[layouts.length - 1]),
    };
    this.numBlocks = Math.min(...ready.map((r) => r.numKvBlocks));
    const promised = ready.map((r) => r.otherLayoutNumKvBlocks);
    this.decodeBlocksPromised =
      layouts.length > 1 && promised.every((n) => n !== undefined) ? Math.min(...promised) : undefined;
    this.figures = ReplicaDevice.sum(ready);
    this.digests = ready.map((r) => r.weightDigest);
    this.isKvReportedByAll =
      actors.length > 1 && ready.some((r) => r.hasKvStore) && actors.every((a) => a.expectStepKv);
    for (const actor of actors) actor.onFailure((error) => this.failures.fail(error));
  }

  private static sum(answers: Array<{ weightBytes: number; kvCacheBytes: number }>) {
    return {
      weightBytes: answers.reduce((sum, r) => sum + r.weightBytes, 0),
      kvCacheBytes: answers.reduce((sum, r) => sum + r.kvCacheBytes, 0),
    };
  }

  get phase(): Phase {
    return this.currentPhase;
  }

  /** The configuration of the current phase (dp 1). */
  get parallel(): ParallelConfig {
    return oneReplica(this.layouts[layoutIndex(this.currentPhase)]);
  }

  /** KV blocks every device of the current layout holds (the smallest cache decides). */
  get numKvBlocks(): number {
    return this.numBlocks;
  }

  /** KV blocks every device of the decode layout will hold, as the devices said at load; undefined if one did not. */
  get numDecodeKvBlocks(): number | undefined {
    return this.decodeBlocksPromised;
  }

  /** Each device's place in the current layout, 'stage s tp r' (for the trace's device tracks). */
  get deviceRoles(): readonly string[] {
    return this.rolesByPhase[this.currentPhase];
  }

  /** Pipeline depth of the current layout: how many steps may usefully be in flight. */
  get maxInFlight(): number {
    return this.parallel.pp;
  }

  /** Every device worker runs the steps it is sent in arrival order (a queue per worker). */
  get queuesSteps(): boolean {
    return true;
  }

  get numInFlight(): number {
    return this.pending.size;
  }

  /** Weight and KV cache bytes over all the replica's devices, in the current layout. */
  get weightBytes(): number {
    return this.figures.weightBytes;
  }

  get kvCacheBytes(): number {
    return this.figures.kvCacheBytes;
  }

  /** sha256 of each device's weights (local index order), when the devices were asked for them. */
  get weightDigests(): ReadonlyArray<string | undefined> {
    return this.digests;
  }

  /** The devices' answers to the last switch, by local device index. */
  get lastReshard(): readonly ReshardDone[] {
    return this.lastDone;
  }

  get failure(): Error | undefined {
    return this.failures.error;
  }

  execute(batch: StepBatch): Promise<StepResult> {
    if (this.failures.error) return Promise.reject(this.failures.error);
    if (this.isSwitching)
      return Promise.reject(new Error(`step ${batch.stepId} sent while replica ${this.dpRank} re-shards`));
    let sent: StepBatch;
    try {
      sent = this.options.hostSlots ? withHostSlots(batch, this.options.hostSlots, this.dpRank) : batch;
    } catch (error) {
      return Promise.reject(error);
    }
    const answer = this.expectAnswers(batch.stepId);
    if (this.isKvReportedByAll) sent = { ...sent, isKvReported: true };
    for (const stage of this.arrangement) for (const actor of stage) actor.postStep(sent);
    // Forgotten before the caller hears the answer, so a switch right after the last answer
    // finds nothing in flight.
    return new Promise<StepResult>((resolve, reject) => {
      this.pending.set(batch.stepId, reject);
      answer.then(
        (result) => {
          // Once a device has failed, no later answer counts: the failure settles every step.
          if (this.failures.isHeld) return;
          this.pending.delete(batch.stepId);
          resolve(result);
        },
        // The replica's failure (settled below) rejects this step with its cause.
        (error: Error) => this.failures.fail(error),
      );
    });
  }

  /**
   * The answering device's stepDone; where every device reports KV (isKvReportedByAll), once
   * every other device's stepKv is in too, with the timings combined (combineStepKv) and each
   * device's own report, its spans mapped onto the coordinator's clock, in deviceKv.
   */
  private expectAnswers(stepId: number): Promise<StepResult> {
    const answerer = this.arrangement[this.arrangement.length - 1][0];
    const answering = this.actors.indexOf(answerer);
    const answer = answerer.expectStep(stepId);
    const ranks = deviceRanks(this.parallel);
    const others = this.isKvReportedByAll ? ranks.filter((rank) => rank.device !== answering) : [];
    const reports = others.map((rank) => this.actors[rank.device].expectStepKv!(stepId));
    return Promise.all([answer, ...reports]).then(([result, ...kvs]) => {
      const deviceKv: DeviceKvReport[] = [];
      const reportOf = (rank: (typeof ranks)[number], kv: StepKvTimings) =>
        deviceKvReport(rank, kv, this.actors[rank.device].clock);
      if (result.kvTimings) deviceKv.push(reportOf(ranks[answering]!, result.kvTimings));
      others.forEach((rank, i) => {
        if (movedKv(kvs[i]!)) deviceKv.push(reportOf(rank, kvs[i]!));
      });
      if (deviceKv.length === 0) return result;
      return { ...result, kvTimings: combineStepKv(deviceKv, this.parallel.pp - 1), deviceKv };
    });
  }

  /** Re-shards every device to `phase`'s layout; the step that follows runs in it. */
  async switchTo(phase: Phase): Promise<ReplicaReshardStats> {
    if (this.failures.error) throw this.failures.error;
    if (!PHASES.includes(phase)) throw new RangeError(`unknown phase ${String(phase)}`);
    if (this.layouts.length === 1)
      throw new Error(
        `replica ${this.dpRank} has one layout (${formatParallelConfig(this.parallel)}): no switch`,
      );
    if (phase === this.currentPhase)
      throw new Error(`replica ${this.dpRank} is in the ${phase} layout already`);
    if (this.isSwitching) throw new Error(`replica ${this.dpRank} is re-sharding already`);
    if (this.pending.size > 0) {
      throw new Error(
        `replica ${this.dpRank}: switch to ${phase} with ${this.pending.size} step(s) in flight; ` +
          'a re-shard starts only after every step has answered',
      );
    }
    const from = oneReplica(this.layouts[layoutIndex(this.currentPhase)]);
    const to = oneReplica(this.layouts[layoutIndex(phase)]);
    const plan = this.options.planner!(from, to);
    checkReshardPlan(plan, this.actors.length);
    const reshardId = this.nextReshardId++;
    const startMs = performance.now();
    this.isSwitching = true;
    let done: ReshardDone[];
    try {
      done = await Promise.all(
        this.actors.map((actor, i) =>
          actor.reshard(
            reshardMessage(reshardId, phase, plan.devices[i], this.options.isWeightDigestReturned),
          ),
        ),
      );
    } catch (error) {
      throw await this.failures.settledFailure(error as Error);
    } finally {
      this.isSwitching = false;
    }
    if (this.failures.error) throw this.failures.error;
    const ms = performance.now() - startMs;
    this.currentPhase = phase;
    this.arrangement = arrange(to, this.actors);
    this.numBlocks = Math.min(...done.map((d) => d.numKvBlocks));
    this.figures = ReplicaDevice.sum(done);
    this.digests = done.map((d) => d.weightDigest);
    this.lastDone = done;
    const devices = done.map((d, i) => reshardDoneOnCoordinatorClock(d, this.actors[i].clock));
    const bytesFromPeers = done.reduce((sum, d) => sum + d.bytesReceived, 0);
    const bytesFromHost = done.reduce((sum, d) => sum + d.bytesFromHost, 0);
    const stats: ReplicaReshardStats = {
      ms,
      bytesMoved: bytesFromPeers + bytesFromHost,
      bytesFromHost,
      numKvBlocks: this.numBlocks,
      route: plan.route,
      from,
      to,
      bytesFromPeers,
      devices,
    };
    const previous = phase === 'prefill' ? 'decode' : 'prefill';
    this.options.log?.(
      `reshard ${previous} ${formatParallelConfig(from)} -> ${phase} ${formatParallelConfig(to)}: ` +
        `${formatBytes(stats.bytesMoved)} moved (p2p ${formatBytes(bytesFromPeers)}, ` +
        `host ${formatBytes(bytesFromHost)}) in ${Math.round(ms)} ms`,
    );
    return stats;
  }

  /** Stops every actor at once (the replica was lost); actors without close are left alone. */
  async abort(): Promise<void> {
    await Promise.all(this.actors.map((actor) => actor.close?.('abort').catch(() => {})));
  }
}
