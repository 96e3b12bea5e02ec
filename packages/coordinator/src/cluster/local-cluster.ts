/**
 * Device actors in worker threads of this process, laid out by a static DxTyPz configuration:
 * ranks from deviceRanks (device = (dp * pp + stage) * tp + tpRank), one TP group per
 * (dp, stage), one MessageChannel per (dp, stage boundary, tp rank) for activations, all actors
 * spawned and loaded concurrently. The result is one ReplicaDevice per DP replica. With
 * hostKvBytes, one kv-store worker is the host's KV tier (LocalHostKv) and every device worker
 * gets a link to it, so preemption can swap instead of recompute.
 *
 * With decodeParallel the cluster is phased (Seesaw): the same workers also get layout 1's TP
 * groups and pipeline links plus a full mesh of weight-slice links inside each replica, load
 * layout 0 (the prefill configuration), and are driven as one two-layout ReplicaDevice per
 * replica, which re-shards them between the two layouts. Either way the host KV tier is split per replica
 * (one scheduler each).
 */
import {
  deviceRanks,
  formatParallelConfig,
  loadModelConfig,
  type ModelConfig,
  type ParallelConfig,
  parseParallelConfig,
  type ReshardLinkRates,
  type ReshardRoute,
  resolveKvDtype,
  validateForModel,
} from '@seesaw/model';
import {
  type DeviceWorkerData,
  type DeviceWorkerLinkPorts,
  ENGINE_DEFAULTS,
  type KvCacheDType,
  type KvDTypeSetting,
} from '@seesaw/protocol';
import { DeviceActorHandle } from './device-actor-handle.ts';
import { wireLayout, wireReshardMesh } from './layout-wiring.ts';
import { type EngineHostKv, LocalHostKv } from './local-host-kv.ts';
import { createClusterPlanner, createPhasedReplicas, phasedLayouts } from './phased-replicas.ts';
import type { ReplicaDevice } from './replica-device.ts';
import { groupReplicas, shardLoads } from './replica-loading.ts';
import type { ReshardPlanner } from './replica-reshard.ts';

export interface LocalClusterOptions {
  /** The device worker's entry module (gpu-actor's device-worker.ts); the coordinator never imports it. */
  workerUrl: URL | string;
  modelDir: string;
  /** 'D2T2P2' style, or parsed. The prefill configuration (layout 0) of a phased cluster. */
  parallel: ParallelConfig | string;
  /**
   * The decode configuration (layout 1): makes the cluster phased. Same dp and the same number
   * of devices per replica as `parallel`.
   */
  decodeParallel?: ParallelConfig | string;
  /** How re-shards fetch weights: from peers, from the host's checkpoint, or whichever is sooner (default). */
  reshardRoute?: ReshardRoute;
  /** Link rates the 'auto' route plans with; default p2p 4e9 B/s, host 2e9 B/s. */
  reshardRates?: ReshardLinkRates;
  /**
   * A phased cluster's devices keep their shard under each layout in host memory, so a
   * re-shard's host pieces are memory copies, not checkpoint reads (default true when phased).
   */
  hostWeightCache?: boolean;
  /** Devices return a sha256 of their weights on load and on every re-shard (tests). */
  isWeightDigestReturned?: boolean;
  /** Kernel threads of each device. Default 1. */
  numThreadsPerDevice?: number;
  /** Each device's budget for weights plus KV cache, bytes. */
  deviceMemoryBytes: number;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
  /** KV cache element type of every device and the host tier (auto: the checkpoint's 16-bit type). Default f32. */
  kvDtype?: KvDTypeSetting;
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
   * evenly over the dp replicas (see LocalHostKv). Absent: no host KV tier.
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
    /** The decode configuration of a phased cluster; undefined for a static one. */
    readonly decodeParallel: ParallelConfig | undefined,
    readonly config: ModelConfig,
    /** Every actor in device order. */
    readonly actors: DeviceActorHandle[],
    /** One per DP replica, with one layout (static) or two (phased). */
    private readonly replicaDevices: ReplicaDevice[],
    /** The host KV tier, when hostKvBytes was given. */
    readonly hostKv: LocalHostKv | undefined,
    /** Element type of every device's KV cache and of the host tier's slots. */
    readonly kvDtype: KvCacheDType,
  ) {}

  /**
   * One per DP replica of a static cluster, for the static engines (a phased cluster's replicas
   * switch layouts, so they are only handed out as phasedReplicas, to the Seesaw engines).
   */
  get replicas(): ReplicaDevice[] {
    if (this.decodeParallel)
      throw new Error(`${this.name} is a phased cluster: drive its phasedReplicas, not replicas`);
    return this.replicaDevices;
  }

  /** One per DP replica of a phased cluster; empty for a static one. */
  get phasedReplicas(): ReplicaDevice[] {
    return this.decodeParallel ? this.replicaDevices : [];
  }

  /** Each replica's share of the host KV tier (EngineOptions.hostKv), when there is one. */
  get engineHostKv(): EngineHostKv | undefined {
    return this.hostKv?.engineHostKv;
  }

  /** 'D2T2', or 'P2 -> T2' for a phased cluster. */
  get name(): string {
    const prefill = formatParallelConfig(this.parallel);
    return this.decodeParallel ? `${prefill} -> ${formatParallelConfig(this.decodeParallel)}` : prefill;
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const parallel =
      typeof options.parallel === 'string' ? parseParallelConfig(options.parallel) : options.parallel;
    const config = loadModelConfig(options.modelDir);
    validateForModel(parallel, config);
    const decode =
      options.decodeParallel === undefined
        ? undefined
        : phasedLayouts(parallel, options.decodeParallel, config);
    // Before any worker starts: the header read and both plans (refused if they cannot fit).
    const planner = decode && createClusterPlanner(options, config, parallel, decode);
    const { dp, tp } = parallel;
    if (Math.max(tp, decode?.tp ?? 1) > 1 && !options.createTpGroup)
      throw new Error(`TP ${Math.max(tp, decode?.tp ?? 1)} needs options.createTpGroup`);
    const blockSize = options.blockSize ?? ENGINE_DEFAULTS.blockSize;
    const kvDtype = resolveKvDtype(options.kvDtype ?? ENGINE_DEFAULTS.kvDtype, options.modelDir);
    const hostKv =
      options.hostKvBytes === undefined
        ? undefined
        : await LocalHostKv.start({
            config,
            blockSize,
            kvDtype,
            capacityBytes: options.hostKvBytes,
            numEngines: dp,
            token: options.token,
            log: options.log,
          });
    try {
      return await LocalCluster.startDevices(
        options,
        parallel,
        decode && { decode, planner: planner! },
        config,
        { blockSize, kvDtype },
        hostKv,
      );
    } catch (error) {
      await hostKv?.close();
      throw error;
    }
  }

  private static async startDevices(
    options: LocalClusterOptions,
    parallel: ParallelConfig,
    phased: { decode: ParallelConfig; planner: ReshardPlanner } | undefined,
    config: ModelConfig,
    cache: { blockSize: number; kvDtype: KvCacheDType },
    hostKv: LocalHostKv | undefined,
  ): Promise<LocalCluster> {
    const { blockSize, kvDtype } = cache;
    const decode = phased?.decode;
    const { dp, tp, pp } = parallel;
    const ranks = deviceRanks(parallel);
    const prefillWiring = wireLayout(parallel, options.createTpGroup);
    const links: DeviceWorkerLinkPorts[] = ranks.map((rank) => {
      const link: DeviceWorkerLinkPorts = { ...prefillWiring.pipeline[rank.device] };
      if (hostKv) link.kvStore = hostKv.linkPort();
      return link;
    });
    const layoutGroups: Array<unknown[] | undefined> = ranks.map(() => undefined);
    if (decode) {
      const decodeWiring = wireLayout(decode, options.createTpGroup);
      const mesh = wireReshardMesh(dp, tp * pp);
      for (const rank of ranks) {
        const link = links[rank.device];
        // Layout 0's ports are the same objects as previous/next: the worker gets each port once.
        link.layouts = [prefillWiring.pipeline[rank.device], decodeWiring.pipeline[rank.device]];
        link.reshardPeers = mesh[rank.device];
        layoutGroups[rank.device] = [prefillWiring.groups[rank.device], decodeWiring.groups[rank.device]];
      }
    }

    const spawned = await Promise.allSettled(
      ranks.map((rank) => {
        const workerData: DeviceWorkerData = {
          token: options.token,
          deviceName: deviceName(rank.device, rank.dpRank, rank.ppStage, rank.tpRank),
        };
        if (tp > 1) workerData.group = prefillWiring.groups[rank.device];
        if (options.groupTimeoutMs !== undefined) workerData.groupTimeoutMs = options.groupTimeoutMs;
        const groups = layoutGroups[rank.device];
        if (groups) workerData.layoutGroups = groups;
        if (decode && options.hostWeightCache !== false) workerData.hostWeightCache = true;
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

    const loads = shardLoads(parallel, config, {
      modelDir: options.modelDir,
      numThreads: options.numThreadsPerDevice ?? 1,
      deviceMemoryBytes: options.deviceMemoryBytes,
      blockSize,
      kvDtype,
      isWeightDigestReturned: options.isWeightDigestReturned,
      otherLayout: decode,
    });
    const loaded = await Promise.allSettled(loads.map(({ rank, shard }) => actors[rank.device].load(shard)));
    const ready = await LocalCluster.allOrAbort(loaded, actors);

    const replicas = phased
      ? createPhasedReplicas({
          ...options,
          ...phased,
          parallel,
          blockSize,
          engineHostKv: hostKv?.engineHostKv,
          actors,
          ready,
        })
      : groupReplicas(actors, ready, parallel, blockSize);
    return new LocalCluster(parallel, phased?.decode, config, actors, replicas, hostKv, kvDtype);
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

  /** Total weight and KV cache bytes over all devices (in the current layout of a phased cluster). */
  get weightBytes(): number {
    return this.replicaDevices.reduce((sum, r) => sum + r.weightBytes, 0);
  }

  get kvCacheBytes(): number {
    return this.replicaDevices.reduce((sum, r) => sum + r.kvCacheBytes, 0);
  }

  /** Stops every actor: 'drain' lets queued steps finish, 'abort' stops at once. Idempotent. */
  async close(options: { mode: 'drain' | 'abort' } = { mode: 'drain' }): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.all(this.actors.map((actor) => actor.close(options.mode)));
    await this.hostKv?.close();
  }
}
