/**
 * One data-parallel replica: the N = tp * pp device actors that together hold one copy of the
 * model, driven as one device. It runs one parallel layout (a static replica) or two, 0 = prefill
 * and 1 = decode (Seesaw; tp0 * pp0 == tp1 * pp1). Local device index i is the same worker in
 * both; its (stage, TP rank) in a layout comes from deviceRanks. The same type drives local
 * worker threads and a remote host's devices (through their DeviceActorHandles).
 *
 * Steps go to every actor, in the current layout's arrangement; the last stage's TP rank 0
 * answers. Where the devices hold kv-store links, every other device also reports its own KV
 * timings for each step (stepKv), and the step settles once all are in, combined (combineStepKv). switchTo (two layouts only) is a barrier: it refuses while a step is in flight,
 * sends every actor its part of the re-shard plan, and only once every `reshardDone` is back
 * does the new arrangement (and KV block count) take effect. Any actor's failure fails the
 * replica: pending and later steps and switches reject with it. A device that loses a peer
 * fails its own step too ("link to the previous stage closed"), a moment before or after the
 * peer's loss is reported: so a failure that is not a loss waits LOSS_GRACE_MS for one, and the
 * replica fails with the loss when it comes (a lost replica is recoverable, a failed one is not).
 */
import {
  type DeviceReshardPlan,
  deviceRanks,
  formatParallelConfig,
  type ParallelConfig,
  type ReshardPlan,
} from '@seesaw/model';
import type {
  DeviceKvReport,
  Ready,
  Reshard,
  ReshardDone,
  StepBatch,
  StepKvTimings,
  StepResult,
} from '@seesaw/protocol';
import type { Phase, PhasedDevice, ReshardStats } from '../seesaw-engine.ts';
import type { DeviceClock } from './device-clock.ts';
import { DeviceLostError } from './device-errors.ts';
import { formatBytes } from './format-bytes.ts';
import { type ReplicaHostSlots, withHostSlots } from './replica-host-slots.ts';
import { combineStepKv, movedKv } from './step-kv-combine.ts';

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

/** How long a device's step failure waits for a loss of another device of the replica to explain it. */
const LOSS_GRACE_MS = 1000;

/** The plan for one replica from one layout to the other (pure; the same for every replica). */
export type ReshardPlanner = (from: ParallelConfig, to: ParallelConfig) => ReshardPlan;

export interface ReplicaDeviceOptions {
  dpRank: number;
  /** By local device index, [0, tp * pp). */
  actors: ReplicaActor[];
  /** [static layout] or [prefill, decode]; dp is ignored (this is one replica). */
  layouts: readonly ParallelConfig[];
  /** Every actor's answer to its layout-0 loadShard, by local device index. */
  ready: Ready[];
  blockSize: number;
  /** Plans the re-shards of a two-layout replica (required there). */
  planner?: ReshardPlanner;
  hostSlots?: ReplicaHostSlots;
  /** Ask every device for a sha256 of its weights on each re-shard (tests). */
  isWeightDigestReturned?: boolean;
  /** One line per switch. */
  log?: (line: string) => void;
}

/** What switchTo reports: the engine's figures plus every device's own answer (for traces). */
export interface ReplicaReshardStats extends ReshardStats {
  from: ParallelConfig;
  to: ParallelConfig;
  /** Bytes devices received from peers (the rest of bytesMoved came from the host). */
  bytesFromPeers: number;
  /** By local device index; startMs / endMs mapped onto the coordinator's epoch clock. */
  devices: ReshardDone[];
}

const PHASES: readonly Phase[] = ['prefill', 'decode'];

function layoutIndex(phase: Phase): number {
  return phase === 'prefill' ? 0 : 1;
}

function oneReplica(parallel: ParallelConfig): ParallelConfig {
  return { dp: 1, tp: parallel.tp, pp: parallel.pp };
}

/** actors[stage][tpRank] of `parallel`. */
function arrange(parallel: ParallelConfig, actors: readonly ReplicaActor[]): ReplicaActor[][] {
  const stages: ReplicaActor[][] = Array.from({ length: parallel.pp }, () => []);
  for (const rank of deviceRanks(oneReplica(parallel)))
    stages[rank.ppStage][rank.tpRank] = actors[rank.device];
  return stages;
}

/** 'stage s tp r' of each local device under `parallel`. */
function deviceRolesOf(parallel: ParallelConfig): string[] {
  const roles: string[] = [];
  for (const rank of deviceRanks(oneReplica(parallel)))
    roles[rank.device] = `stage ${rank.ppStage} tp ${rank.tpRank}`;
  return roles;
}

export class ReplicaDevice implements PhasedDevice {
  readonly dpRank: number;
  readonly blockSize: number;
  /** By local device index. */
  readonly actors: readonly ReplicaActor[];
  private readonly layouts: readonly ParallelConfig[];
  private currentPhase: Phase = 'prefill';
  private arrangement: ReplicaActor[][];
  private numBlocks: number;
  private figures: { weightBytes: number; kvCacheBytes: number };
  private digests: Array<string | undefined>;
  private readonly pending = new Map<number, (error: Error) => void>();
  private isSwitching = false;
  private nextReshardId = 1;
  private failureError: Error | undefined;
  /** A failure that is not a loss, held for LOSS_GRACE_MS in case a loss explains it. */
  private heldFailure: { error: Error; timer: NodeJS.Timeout } | undefined;
  private readonly settledListeners: Array<(error: Error) => void> = [];
  private lastDone: ReshardDone[] = [];
  private readonly rolesByPhase: Record<Phase, readonly string[]>;
  /** Every device reports its own KV timings for each step (its devices hold kv-store links). */
  private readonly isKvReportedByAll: boolean;

  constructor(private readonly options: ReplicaDeviceOptions) {
    const { actors, layouts, ready } = options;
    if (layouts.length !== 1 && layouts.length !== 2)
      throw new RangeError(`a replica runs one layout or two (prefill, decode), not ${layouts.length}`);
    if (layouts.some((layout) => layout.tp * layout.pp !== actors.length)) {
      const names = layouts.map((layout) => formatParallelConfig(oneReplica(layout)));
      throw new RangeError(
        `${layouts.length === 1 ? 'layout' : 'layouts'} ${names.join(' and ')} ` +
          `must ${layouts.length === 1 ? '' : 'both '}span the replica's ${actors.length} devices`,
      );
    }
    if (layouts.length === 2 && !options.planner)
      throw new RangeError('a replica with two layouts needs a re-shard planner');
    if (ready.length !== actors.length)
      throw new RangeError(`${actors.length} actors but ${ready.length} ready`);
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
    this.figures = ReplicaDevice.sum(ready);
    this.digests = ready.map((r) => r.weightDigest);
    this.isKvReportedByAll =
      actors.length > 1 && ready.some((r) => r.hasKvStore) && actors.every((a) => a.expectStepKv);
    for (const actor of actors) actor.onFailure((error) => this.fail(error));
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
    return this.failureError;
  }

  execute(batch: StepBatch): Promise<StepResult> {
    if (this.failureError) return Promise.reject(this.failureError);
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
          if (this.heldFailure) return;
          this.pending.delete(batch.stepId);
          resolve(result);
        },
        // The replica's failure (settled below) rejects this step with its cause.
        (error: Error) => this.fail(error),
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
      if (result.kvTimings) deviceKv.push(this.deviceReport(ranks[answering]!, result.kvTimings));
      others.forEach((rank, i) => {
        if (movedKv(kvs[i]!)) deviceKv.push(this.deviceReport(rank, kvs[i]!));
      });
      if (deviceKv.length === 0) return result;
      return { ...result, kvTimings: combineStepKv(deviceKv, this.parallel.pp - 1), deviceKv };
    });
  }

  /** A device's KV report with its spans on the coordinator's clock (dropped when its clock is unknown). */
  private deviceReport(
    rank: { device: number; ppStage: number; tpRank: number },
    kv: StepKvTimings,
  ): DeviceKvReport {
    const { spans, ...timings } = kv;
    const clock = this.actors[rank.device].clock;
    const report: DeviceKvReport = {
      device: rank.device,
      ppStage: rank.ppStage,
      tpRank: rank.tpRank,
      kv: timings,
    };
    if (clock && spans) {
      report.kv.spans = spans.map((span) => ({
        ...span,
        startMs: clock.toCoordinatorMs(span.startMs),
        endMs: clock.toCoordinatorMs(span.endMs),
      }));
    }
    return report;
  }

  /** Re-shards every device to `phase`'s layout; the step that follows runs in it. */
  async switchTo(phase: Phase): Promise<ReplicaReshardStats> {
    if (this.failureError) throw this.failureError;
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
    this.checkPlan(plan);
    const reshardId = this.nextReshardId++;
    const startMs = performance.now();
    this.isSwitching = true;
    let done: ReshardDone[];
    try {
      done = await Promise.all(
        this.actors.map((actor, i) => actor.reshard(this.reshardMessage(reshardId, phase, plan.devices[i]))),
      );
    } catch (error) {
      throw await this.settledFailure(error as Error);
    } finally {
      this.isSwitching = false;
    }
    if (this.failureError) throw this.failureError;
    const ms = performance.now() - startMs;
    this.currentPhase = phase;
    this.arrangement = arrange(to, this.actors);
    this.numBlocks = Math.min(...done.map((d) => d.numKvBlocks));
    this.figures = ReplicaDevice.sum(done);
    this.digests = done.map((d) => d.weightDigest);
    this.lastDone = done;
    const devices = done.map((d, i) => this.onCoordinatorClock(d, this.actors[i].clock));
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

  /** A device's reshardDone with its start and end mapped onto the coordinator's clock (dropped when unknown). */
  private onCoordinatorClock(done: ReshardDone, clock: DeviceClock | undefined): ReshardDone {
    const { startMs, endMs, ...rest } = done;
    if (!clock || startMs === undefined || endMs === undefined) return rest;
    return { ...rest, startMs: clock.toCoordinatorMs(startMs), endMs: clock.toCoordinatorMs(endMs) };
  }

  private reshardMessage(reshardId: number, phase: Phase, plan: DeviceReshardPlan): Omit<Reshard, 'tag'> {
    const message: Omit<Reshard, 'tag'> = { reshardId, layout: layoutIndex(phase), plan };
    if (this.options.isWeightDigestReturned) message.isWeightDigestReturned = true;
    return message;
  }

  private checkPlan(plan: ReshardPlan): void {
    const ok = plan.devices.length === this.actors.length && plan.devices.every((d, i) => d.device === i);
    if (!ok) {
      throw new Error(
        `re-shard plan covers devices [${plan.devices.map((d) => d.device).join(', ')}], ` +
          `expected 0..${this.actors.length - 1} in order`,
      );
    }
  }

  /** Stops every actor at once (the replica was lost); actors without close are left alone. */
  async abort(): Promise<void> {
    await Promise.all(this.actors.map((actor) => actor.close?.('abort').catch(() => {})));
  }

  private fail(error: Error): void {
    if (this.failureError) return;
    if (error instanceof DeviceLostError) {
      this.settle(error);
    } else {
      this.heldFailure ??= { error, timer: setTimeout(() => this.settle(error), LOSS_GRACE_MS) };
    }
  }

  private settle(error: Error): void {
    if (this.failureError) return;
    if (this.heldFailure) clearTimeout(this.heldFailure.timer);
    this.failureError = error;
    for (const reject of this.pending.values()) reject(error);
    this.pending.clear();
    for (const listener of this.settledListeners) listener(error);
    this.settledListeners.length = 0;
  }

  /** The replica's failure once settled (a loss within the grace wins over `error`). */
  private settledFailure(error: Error): Promise<Error> {
    this.fail(error);
    if (this.failureError) return Promise.resolve(this.failureError);
    return new Promise((resolve) => this.settledListeners.push(resolve));
  }
}
