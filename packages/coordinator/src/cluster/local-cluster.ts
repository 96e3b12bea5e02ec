/**
 * Device actors in worker threads of this process, laid out by a static DxTyPz configuration:
 * ranks from deviceRanks (device = (dp * pp + stage) * tp + tpRank), one TP group per
 * (dp, stage), one MessageChannel per (dp, stage boundary, tp rank) for activations, all actors
 * spawned and loaded concurrently. The result is one ReplicaDevice per DP replica. With
 * hostKvBytes, one kv-store worker is the host's KV tier (LocalHostKv) and every device worker
 * gets a link to it, so preemption can swap instead of recompute.
 */
import { MessageChannel } from 'node:worker_threads';
import {
  balancedRange,
  deviceRanks,
  formatParallelConfig,
  loadModelConfig,
  type ModelConfig,
  type ParallelConfig,
  parseParallelConfig,
  validateForModel,
} from '@seesaw/model';
import type { Ready } from '@seesaw/protocol';
import { DeviceActorHandle } from './device-actor-handle.ts';
import { type EngineHostKv, LocalHostKv } from './local-host-kv.ts';
import { ReplicaDevice } from './replica-device.ts';
import type { DeviceWorkerLinkPorts, DeviceWorkerSpawnData } from './worker-contract.ts';

const DEFAULT_BLOCK_SIZE = 16;

export interface LocalClusterOptions {
  /** The device worker's entry module (gpu-actor's device-worker.ts); the coordinator never imports it. */
  workerUrl: URL | string;
  modelDir: string;
  /** 'D2T2P2' style, or parsed. */
  parallel: ParallelConfig | string;
  /** Kernel threads of each device. Default 1. */
  numThreadsPerDevice?: number;
  /** Each device's budget for weights plus KV cache, bytes. */
  deviceMemoryBytes: number;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
  /** Cluster secret every hello must carry. */
  token: string;
  /**
   * Makes the shared-memory descriptors of one TP group (gpu-actor's createDeviceWorkerGroup);
   * descriptor r goes to TP rank r. Required when tp > 1.
   */
  createTpGroup?: (size: number) => unknown[];
  groupTimeoutMs?: number;
  /**
   * Host memory for the KV tier, bytes: one kv-store worker for this host, its slots split
   * evenly over the dp * pp virtual engines (see LocalHostKv). Absent: no host KV tier.
   */
  hostKvBytes?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  log?: (line: string) => void;
}

/** 'device 3 (dp 1, pp 0, tp 1)'. */
function deviceName(device: number, dpRank: number, ppStage: number, tpRank: number): string {
  return `device ${device} (dp ${dpRank}, pp ${ppStage}, tp ${tpRank})`;
}

export class LocalCluster {
  private isClosed = false;

  private constructor(
    readonly parallel: ParallelConfig,
    readonly config: ModelConfig,
    /** Every actor in device order. */
    readonly actors: DeviceActorHandle[],
    readonly replicas: ReplicaDevice[],
    /** The host KV tier, when hostKvBytes was given. */
    readonly hostKv: LocalHostKv | undefined,
  ) {}

  /** Each engine's share of the host KV tier (EngineOptions.hostKv), when there is one. */
  get engineHostKv(): EngineHostKv | undefined {
    return this.hostKv?.engineHostKv;
  }

  get name(): string {
    return formatParallelConfig(this.parallel);
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const parallel =
      typeof options.parallel === 'string' ? parseParallelConfig(options.parallel) : options.parallel;
    const config = loadModelConfig(options.modelDir);
    validateForModel(parallel, config);
    const { dp, tp, pp } = parallel;
    if (tp > 1 && !options.createTpGroup) throw new Error(`TP ${tp} needs options.createTpGroup`);
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    const hostKv =
      options.hostKvBytes === undefined
        ? undefined
        : await LocalHostKv.start({
            config,
            blockSize,
            capacityBytes: options.hostKvBytes,
            numEngines: dp * pp,
            token: options.token,
            log: options.log,
          });
    try {
      return await LocalCluster.startDevices(options, parallel, config, blockSize, hostKv);
    } catch (error) {
      await hostKv?.close();
      throw error;
    }
  }

  private static async startDevices(
    options: LocalClusterOptions,
    parallel: ParallelConfig,
    config: ModelConfig,
    blockSize: number,
    hostKv: LocalHostKv | undefined,
  ): Promise<LocalCluster> {
    const { dp, tp, pp } = parallel;
    const ranks = deviceRanks(parallel);
    const indexOf = (dpRank: number, ppStage: number, tpRank: number) =>
      (dpRank * pp + ppStage) * tp + tpRank;
    const groups = new Map<string, unknown[]>();
    const links: DeviceWorkerLinkPorts[] = ranks.map(() => (hostKv ? { kvStore: hostKv.linkPort() } : {}));
    for (let dpRank = 0; dpRank < dp; dpRank++) {
      for (let ppStage = 0; ppStage < pp; ppStage++) {
        if (tp > 1) groups.set(`${dpRank}/${ppStage}`, options.createTpGroup!(tp));
        if (ppStage === pp - 1) continue;
        for (let tpRank = 0; tpRank < tp; tpRank++) {
          const { port1, port2 } = new MessageChannel();
          links[indexOf(dpRank, ppStage, tpRank)].next = port1;
          links[indexOf(dpRank, ppStage + 1, tpRank)].previous = port2;
        }
      }
    }

    const spawned = await Promise.allSettled(
      ranks.map((rank) => {
        const workerData: DeviceWorkerSpawnData = {
          token: options.token,
          deviceName: deviceName(rank.device, rank.dpRank, rank.ppStage, rank.tpRank),
        };
        if (tp > 1) workerData.group = groups.get(`${rank.dpRank}/${rank.ppStage}`)![rank.tpRank];
        if (options.groupTimeoutMs !== undefined) workerData.groupTimeoutMs = options.groupTimeoutMs;
        return DeviceActorHandle.spawn({
          workerUrl: options.workerUrl,
          name: workerData.deviceName,
          workerData,
          links: links[rank.device],
          heartbeatIntervalMs: options.heartbeatIntervalMs,
          heartbeatTimeoutMs: options.heartbeatTimeoutMs,
          log: options.log,
        });
      }),
    );
    const actors = await LocalCluster.allOrAbort(spawned);

    const parallelism = `D${dp}T${tp}P${pp}`;
    const loaded = await Promise.allSettled(
      ranks.map((rank) =>
        actors[rank.device].load({
          modelDir: options.modelDir,
          parallelism,
          dpRank: rank.dpRank,
          tpRank: rank.tpRank,
          ppStage: rank.ppStage,
          layers: balancedRange(config.numLayers, pp, rank.ppStage),
          numThreads: options.numThreadsPerDevice ?? 1,
          deviceMemoryBytes: options.deviceMemoryBytes,
          blockSize,
        }),
      ),
    );
    const ready = await LocalCluster.allOrAbort(loaded, actors);

    const replicas = Array.from({ length: dp }, (_, dpRank) => {
      const stages = Array.from({ length: pp }, (_, ppStage) =>
        Array.from({ length: tp }, (_, tpRank) => indexOf(dpRank, ppStage, tpRank)),
      );
      return new ReplicaDevice(
        dpRank,
        stages.map((stage) => stage.map((device) => actors[device])),
        stages.map((stage) => stage.map((device): Ready => ready[device])),
        blockSize,
      );
    });
    return new LocalCluster(parallel, config, actors, replicas, hostKv);
  }

  /** The values, or (after stopping every started actor) the first failure. */
  private static async allOrAbort<T>(
    results: PromiseSettledResult<T>[],
    started: DeviceActorHandle[] = [],
  ): Promise<T[]> {
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return results.map((r) => (r as PromiseFulfilledResult<T>).value);
    const toStop = started.length
      ? started
      : results.flatMap((r) => (r.status === 'fulfilled' ? [r.value as DeviceActorHandle] : []));
    await Promise.all(toStop.map((actor) => actor.close('abort')));
    throw failed.reason;
  }

  /** Total weight and KV cache bytes over all devices. */
  get weightBytes(): number {
    return this.replicas.reduce((sum, r) => sum + r.weightBytes, 0);
  }

  get kvCacheBytes(): number {
    return this.replicas.reduce((sum, r) => sum + r.kvCacheBytes, 0);
  }

  /** Stops every actor: 'drain' lets queued steps finish, 'abort' stops at once. Idempotent. */
  async close(options: { mode: 'drain' | 'abort' } = { mode: 'drain' }): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.all(this.actors.map((actor) => actor.close(options.mode)));
    await this.hostKv?.close();
  }
}
