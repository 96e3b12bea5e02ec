/**
 * Continuous batching over DP replicas x PP "virtual engines": each replica is split into pp
 * KV partitions (KvPartitionView), each driven by its own Engine and Scheduler, so one replica
 * has up to pp steps in flight and its pipeline stages work on different steps at once. With
 * dp = pp = 1 this is exactly one Engine on one device.
 *
 * Requests are placed when added, on the live engine with the fewest outstanding tokens (prompt
 * + max output of its unfinished requests; ties to the lowest index): deterministic, and it
 * balances mixed lengths better than round robin. A request moves only when its replica is lost.
 *
 * A replica that loses a device (DeviceLostError from any of its steps) is dropped: its engines
 * are not stepped again, its other actors are closed, and every request it had not finished is
 * added again, from its prompt, to the surviving replicas. Restarting from the prompt (rather
 * than keeping the tokens so far and recomputing their KV) keeps the Scheduler's contract intact
 * and gives the same tokens: greedy is deterministic, and seeded sampling draws from (seed,
 * output index), with a null seed resolved here once so the rerun uses the same one. When no
 * replica is left, step() throws ReplicasLostError carrying the unfinished requests. Any other
 * failure (e.g. DeviceStepError) stops the run as before.
 */
import { Engine, type EngineOptions, type EngineStats, type ExecutionDevice } from '../engine.ts';
import { InFlightSteps } from '../in-flight-steps.ts';
import { LeastLoadedPlacement, withResolvedSeed } from '../least-loaded-placement.ts';
import type { EngineRequest, RequestOutput } from '../request.ts';
import { DeviceLostError } from './device-errors.ts';
import { partitionReplica } from './kv-partition-view.ts';
import { ReplicasLostError } from './recovery-errors.ts';
import { ReplicaDevice } from './replica-device.ts';

/**
 * hostKv, when given, is each engine's share of the host KV tier (LocalCluster.engineHostKv):
 * engine e (replica-major) swaps to host slots [e * hostKv.numSlots, (e + 1) * hostKv.numSlots).
 */
export interface ClusterEngineOptions extends EngineOptions {
  /** Where recovery events go (a replica lost, requests requeued). */
  log?: (line: string) => void;
}

export class ClusterEngine {
  /** Replica-major: engines[dpRank * pp + partition]. */
  readonly engines: Engine[];
  private readonly replicas: readonly ExecutionDevice[];
  private readonly pp: number;
  private readonly log: (line: string) => void;
  private readonly placement: LeastLoadedPlacement;
  private readonly inFlight = new InFlightSteps();
  private readonly lostReplicas = new Set<number>();
  private readonly lostDeviceNames: string[] = [];
  private readonly closingActors: Promise<void>[] = [];
  private failureError: Error | undefined;

  constructor(replicas: readonly ExecutionDevice[], pp: number, options: ClusterEngineOptions) {
    if (replicas.length < 1) throw new RangeError('ClusterEngine needs at least one replica');
    const { log, ...engineOptions } = options;
    this.replicas = replicas;
    this.pp = pp;
    this.log = log ?? (() => {});
    // With a host KV tier, hostKv.numSlots is each engine's share; every engine gets its own range.
    const hostKv = engineOptions.hostKv;
    this.engines = replicas.flatMap((replica, r) =>
      partitionReplica(
        replica,
        pp,
        hostKv && { numSlotsPerPartition: hostKv.numSlots, firstPartition: r * pp },
      ).map((view) => new Engine(view, engineOptions)),
    );
    this.placement = new LeastLoadedPlacement(this.engines.length);
  }

  /** The smallest length cap of any live engine (all equal unless partitions differ in size). */
  get maxModelLen(): number {
    return Math.min(...this.liveEngineIndexes().map((index) => this.engines[index].maxModelLen));
  }

  /** Replicas still being driven. */
  get numLiveReplicas(): number {
    return this.replicas.length - this.lostReplicas.size;
  }

  /** The first failed device of each lost replica, in loss order. */
  get lostDevices(): readonly string[] {
    return this.lostDeviceNames;
  }

  /** Queues a request on the least loaded live engine; throws RequestRejectedError like Engine. */
  addRequest(request: EngineRequest): void {
    if (this.failureError) throw this.failureError;
    this.place(withResolvedSeed(request));
  }

  hasUnfinishedRequests(): boolean {
    if (this.failureError) return this.placement.size > 0;
    return (
      this.inFlight.size > 0 ||
      this.liveEngineIndexes().some((index) => this.engines[index].hasUnfinishedRequests())
    );
  }

  /**
   * Starts a step on every idle live engine with work, then waits for the first step to finish
   * and returns the requests finished in it (none when that step lost its replica). A failure
   * other than a lost replica, or the loss of the last replica, is thrown now and by every later
   * call.
   */
  async step(): Promise<RequestOutput[]> {
    if (this.failureError) throw this.failureError;
    for (const index of this.liveEngineIndexes()) this.inFlight.startIfIdle(index, this.engines[index]);
    if (this.inFlight.size === 0) return [];
    const settled = await this.inFlight.next();
    if ('error' in settled) {
      if (!(settled.error instanceof DeviceLostError)) {
        this.failureError = settled.error;
        throw settled.error;
      }
      this.loseReplica(Math.floor(settled.index / this.pp), settled.error);
      return [];
    }
    this.placement.release(settled.outputs);
    return settled.outputs;
  }

  /** Steps until everything queued is done; each finished request goes to onFinished as it ends. */
  async run(onFinished?: (output: RequestOutput) => void): Promise<EngineStats> {
    while (this.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  /** Resolves once the actors of every lost replica have been closed. */
  async closeLostReplicas(): Promise<void> {
    await Promise.all(this.closingActors);
  }

  /**
   * Counters summed over engines, lost replicas' included (their work was done, if wasted).
   * Times (busyMs, *StepMs) are summed too: with pp steps in flight they add up overlapping
   * device time, so they can exceed the wall time.
   */
  get stats(): EngineStats {
    const total = { ...this.engines[0].stats };
    for (const engine of this.engines.slice(1)) {
      const stats = engine.stats;
      for (const key of Object.keys(total) as Array<keyof EngineStats>) total[key] += stats[key];
    }
    return total;
  }

  private liveEngineIndexes(): number[] {
    return this.engines.flatMap((_, index) =>
      this.lostReplicas.has(Math.floor(index / this.pp)) ? [] : [index],
    );
  }

  private place(request: EngineRequest): void {
    this.placement.place(request, this.liveEngineIndexes(), (engine) =>
      this.engines[engine].addRequest(request),
    );
  }

  /** Drops the replica and requeues its unfinished requests; throws when it was the last one. */
  private loseReplica(replicaIndex: number, error: DeviceLostError): void {
    this.lostReplicas.add(replicaIndex);
    this.lostDeviceNames.push(error.deviceName);
    const engineIndexes = new Set(Array.from({ length: this.pp }, (_, p) => replicaIndex * this.pp + p));
    // Its other partitions' steps reject with the same failure; nobody waits for them now.
    for (const index of engineIndexes) this.inFlight.forget(index);
    const replica = this.replicas[replicaIndex];
    if (replica instanceof ReplicaDevice) {
      const closing = replica.actors.flat().map((actor) => actor.close('abort').catch(() => {}));
      this.closingActors.push(Promise.all(closing).then(() => {}));
    }
    const orphaned = this.placement.takeFrom(engineIndexes);
    const requests = orphaned.map((placement) => placement.request);
    if (this.numLiveReplicas === 0) {
      this.log(
        `${error.message}: replica ${replicaIndex} stopped; ` +
          `no replica left for ${requests.length} unfinished requests`,
      );
      // Kept so hasUnfinishedRequests() stays true: they did not finish.
      this.placement.restore(orphaned);
      this.failureError = new ReplicasLostError([...this.lostDeviceNames], requests, error);
      throw this.failureError;
    }
    for (const request of requests) this.place(request);
    this.log(
      `${error.message}: replica ${replicaIndex} stopped; requeued ${requests.length} unfinished ` +
        `request${requests.length === 1 ? '' : 's'} onto ${this.numLiveReplicas} surviving ` +
        `replica${this.numLiveReplicas === 1 ? '' : 's'}`,
    );
  }
}
