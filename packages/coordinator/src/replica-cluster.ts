/**
 * The cluster layer over DP replicas, static or Seesaw alike: each replica runs its own engine
 * (one EngineCore: its pipeline depth is its steps in flight), and this layer only
 *
 * - places each request when added, on the live replica with the fewest outstanding tokens
 *   (prompt + max output of its unfinished requests; ties to the lowest index): deterministic,
 *   and it balances mixed lengths better than round robin. A request moves only when its
 *   replica is lost;
 * - steps every idle live replica with work at once and hands back the first to answer;
 * - with `onReplicaLost`, drops a replica whose step failed with DeviceLostError: it is not
 *   stepped again, and every request it had not finished is added again, from its prompt, to the
 *   surviving replicas. Restarting from the prompt keeps the scheduler's contract intact and
 *   gives the same tokens: greedy is deterministic, and seeded sampling draws from (seed, output
 *   index), with a null seed resolved here once so the rerun uses the same one. When no replica
 *   is left, step() throws ReplicasLostError carrying the unfinished requests. Any other failure
 *   (or any failure without `onReplicaLost`) stops the run: it is thrown now and by every later
 *   call.
 */
import { DeviceLostError } from './cluster/device-errors.ts';
import { ReplicasLostError } from './cluster/recovery-errors.ts';
import { InFlightSteps } from './in-flight-steps.ts';
import { LeastLoadedPlacement, withResolvedSeed } from './least-loaded-placement.ts';
import type { EngineRequest, RequestOutput } from './request.ts';

/** One replica's engine (Engine or SeesawEngine): an EngineCore with its policy and stats. */
export interface ReplicaEngine {
  readonly maxModelLen: number;
  /** Numeric figures only: the cluster's stats sum them over replicas. */
  readonly stats: object;
  addRequest(request: EngineRequest): void;
  hasUnfinishedRequests(): boolean;
  step(): Promise<RequestOutput[]>;
}

export interface ReplicaClusterOptions {
  /** Where recovery events go (a replica lost, requests requeued). */
  log?: (line: string) => void;
  /**
   * Makes lost replicas recoverable: called once per replica lost (DeviceLostError from its
   * step), it releases the replica's devices; the cluster goes on with the others.
   */
  onReplicaLost?: (replicaIndex: number) => Promise<void>;
}

export class ReplicaCluster<E extends ReplicaEngine> {
  /** One per replica, in replica order. */
  readonly engines: readonly E[];
  private readonly log: (line: string) => void;
  private readonly onReplicaLost: ((replicaIndex: number) => Promise<void>) | undefined;
  private readonly placement: LeastLoadedPlacement;
  private readonly inFlight = new InFlightSteps();
  private readonly lostReplicas = new Set<number>();
  private readonly lostDeviceNames: string[] = [];
  private readonly releasingReplicas: Promise<void>[] = [];
  private failureError: Error | undefined;

  constructor(engines: readonly E[], options: ReplicaClusterOptions = {}) {
    if (engines.length < 1) throw new RangeError(`${new.target.name} needs at least one replica`);
    this.engines = engines;
    this.log = options.log ?? (() => {});
    this.onReplicaLost = options.onReplicaLost;
    this.placement = new LeastLoadedPlacement(engines.length);
  }

  /** The smallest length cap of any live replica (all equal unless their caches differ). */
  get maxModelLen(): number {
    return Math.min(...this.liveReplicas().map((index) => this.engines[index].maxModelLen));
  }

  /** Replicas still being driven. */
  get numLiveReplicas(): number {
    return this.engines.length - this.lostReplicas.size;
  }

  /** The first failed device of each lost replica, in loss order. */
  get lostDevices(): readonly string[] {
    return this.lostDeviceNames;
  }

  /** Queues a request on the least loaded live replica; throws RequestRejectedError like its engine. */
  addRequest(request: EngineRequest): void {
    if (this.failureError) throw this.failureError;
    this.place(withResolvedSeed(request));
  }

  hasUnfinishedRequests(): boolean {
    if (this.failureError) return this.placement.size > 0;
    return (
      this.inFlight.size > 0 ||
      this.liveReplicas().some((index) => this.engines[index].hasUnfinishedRequests())
    );
  }

  /**
   * Starts a step on every idle live replica with work, then waits for the first step to finish
   * and returns the requests finished in it (none when that step lost its replica).
   */
  async step(): Promise<RequestOutput[]> {
    if (this.failureError) throw this.failureError;
    for (const index of this.liveReplicas()) this.inFlight.startIfIdle(index, this.engines[index]);
    if (this.inFlight.size === 0) return [];
    const settled = await this.inFlight.next();
    if ('error' in settled) {
      if (!(settled.error instanceof DeviceLostError && this.onReplicaLost)) {
        this.failureError = settled.error;
        throw settled.error;
      }
      this.loseReplica(settled.index, settled.error, this.onReplicaLost);
      return [];
    }
    this.placement.release(settled.outputs);
    return settled.outputs;
  }

  /** Steps until everything queued is done; each finished request goes to onFinished as it ends. */
  async run(onFinished?: (output: RequestOutput) => void): Promise<E['stats']> {
    while (this.hasUnfinishedRequests()) {
      const outputs = await this.step();
      if (onFinished) for (const output of outputs) onFinished(output);
    }
    return this.stats;
  }

  /** Resolves once the devices of every lost replica have been released. */
  async closeLostReplicas(): Promise<void> {
    await Promise.all(this.releasingReplicas);
  }

  /**
   * Each replica's figures summed, lost replicas' included (their work was done, if wasted).
   * Times add up too: summed over replicas (and overlapping steps in flight), not wall time.
   */
  get stats(): E['stats'] {
    const all = this.replicaStats as Record<string, number>[];
    const total = { ...all[0] };
    for (const stats of all.slice(1)) for (const key of Object.keys(total)) total[key] += stats[key];
    return total;
  }

  /** Each replica's own stats. */
  get replicaStats(): E['stats'][] {
    return this.engines.map((engine) => engine.stats);
  }

  private liveReplicas(): number[] {
    return this.engines.flatMap((_, index) => (this.lostReplicas.has(index) ? [] : [index]));
  }

  private place(request: EngineRequest): void {
    this.placement.place(request, this.liveReplicas(), (index) => this.engines[index].addRequest(request));
  }

  /** Drops the replica and requeues its unfinished requests; throws when it was the last one. */
  private loseReplica(
    replicaIndex: number,
    error: DeviceLostError,
    release: (replicaIndex: number) => Promise<void>,
  ): void {
    this.lostReplicas.add(replicaIndex);
    this.lostDeviceNames.push(error.deviceName);
    this.inFlight.forget(replicaIndex);
    this.releasingReplicas.push(release(replicaIndex).catch(() => {}));
    const orphaned = this.placement.takeFrom(new Set([replicaIndex]));
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
