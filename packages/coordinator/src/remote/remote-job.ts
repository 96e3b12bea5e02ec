/**
 * One job on the coordinator daemon, from openJob to its end: places the DP replicas on hosts
 * and has their agents spawn the device workers (JobDevices: a replica that fits no single host
 * is split over hosts that accept peer links), drives every device over its relayed WebSocket
 * with the same DeviceActorHandle logic as a local cluster, runs a ClusterEngine over the replicas (a
 * job with a decode layout: the local path's SeesawClusterEngine, job-engine.ts) and
 * streams each finished request back to the client. A host lost while the job runs (its links
 * closed, or its agent silent past the heartbeat deadline) has its device links closed, so the
 * ClusterEngine drops its replicas and requeues their requests on the others. When no replica is
 * left, a Seesaw job re-plans onto the healthy devices (job-replan.ts: a pair that fits them, else
 * a static layout), starts them under a new device job id and resumes its unfinished requests
 * there from their prompts; a static job, or one with nothing to re-plan onto, or a host that
 * fails before the job started, ends with jobFailed naming the host (results already sent stay
 * with the client).
 */

import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  Checkpoint,
  kvDtypeForCheckpoint,
  type ModelConfig,
  parseParallelConfig,
  validateForModel,
} from '@seesaw/model';
import {
  type CoordinatorToDevice,
  type CoordinatorToJobClient,
  type DeviceToCoordinator,
  ENGINE_DEFAULTS,
  type Endpoint,
  type JobClientToCoordinator,
  type JobRequest,
  type KvCacheDType,
  type OpenJob,
  type SpawnHostKv,
} from '@seesaw/protocol';
import { DeviceLostError } from '../cluster/device-errors.ts';
import { type EngineHostKv, engineHostKvFor } from '../cluster/local-host-kv.ts';
import { ReplicasLostError } from '../cluster/recovery-errors.ts';
import type { EngineStats } from '../engine.ts';
import { type EngineRequest, RequestRejectedError } from '../request.ts';
import type { ClusterMetrics } from './cluster-metrics.ts';
import type { HostRegistry } from './host-registry.ts';
import { JobDevices } from './job-devices.ts';
import { type JobEngine, type JobEngineCluster, planSeesawJob, startJobEngine } from './job-engine.ts';
import { countHealthyDevices, type JobLayout, jobLayoutName, replanJobLayout } from './job-replan.ts';
import { checkJobRequest } from './job-request-admission.ts';
import { hostOfDevice } from './remote-replicas.ts';

/**
 * How long a re-plan waits for the registry to drop the hosts of the devices just lost: a killed
 * agent's relayed device links may close a moment before its own link does, and a re-plan that
 * counted that host as up would place devices on it.
 */
const HOST_LOSS_GRACE_MS = 1_000;

export type DeviceLink = Endpoint<CoordinatorToDevice, DeviceToCoordinator>;
export type JobClientLink = Endpoint<CoordinatorToJobClient, JobClientToCoordinator>;

export interface RemoteJobContext {
  jobId: number;
  registry: HostRegistry;
  metrics: ClusterMetrics;
  /** Resolves with the link an agent opened for (jobId, device). */
  expectDeviceLink: (jobId: number, device: number, timeoutMs: number) => Promise<DeviceLink>;
  cancelDeviceLinks: (jobId: number, reason: string) => void;
  /** A fresh id for the devices of a re-planned job (their agents and links start anew under it). */
  nextDeviceJobId: () => number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  log: (line: string) => void;
}

export class RemoteJob {
  /** The job's current devices (a re-plan starts new ones under a fresh device job id). */
  private devices: JobDevices;
  private lostHost: string | undefined;
  /** Every host of the job lost so far (a re-plan leaves them out). */
  private readonly lostHosts = new Set<string>();
  private current: JobLayout | undefined;
  private model: ModelConfig | undefined;
  private kvDtype: KvCacheDType = 'f32';
  /** Counters of the engines a re-plan retired, added to the current engine's. */
  private readonly retiredStats: Record<string, number> = {};
  private failure: Error | undefined;
  private isClientGone = false;
  private wake: (() => void) | undefined;
  private readonly queued: JobRequest[] = [];
  /** Running requests the client asked to stop (stopRequests): their stopWhen says so. */
  private readonly stopAsked = new Set<string>();
  private engine: JobEngineCluster | undefined;
  private vocabSize = 0;
  /** Ids of the requests admitted and not yet finished (a duplicate among them is rejected). */
  private readonly liveRequestIds = new Set<string>();
  private numStepsReported = 0;
  /** 'D2 on host-a (1), host-b (1)' once placed. */
  layout = '';
  /** Settles once the job's devices are given back (release). */
  private readonly released: Promise<void>;
  private markReleased: () => void = () => {};

  constructor(
    private readonly ctx: RemoteJobContext,
    private readonly client: JobClientLink,
    private readonly open: OpenJob,
  ) {
    this.devices = new JobDevices(ctx, ctx.jobId, this.lostHosts);
    this.released = new Promise((resolve) => {
      this.markReleased = resolve;
    });
    client.onMessage((message) => {
      if (message.tag === 'stopRequests') {
        for (const requestId of message.requestIds)
          if (this.liveRequestIds.has(requestId)) this.stopAsked.add(requestId);
        return;
      }
      if (message.tag !== 'submitRequests') return;
      this.ctx.metrics.add('requestsTotal', message.requests.length);
      this.queued.push(...message.requests);
      this.wake?.();
    });
    client.onClose(() => {
      this.isClientGone = true;
      this.ctx.registry.trackRelease(this.released);
      this.wake?.();
    });
  }

  get id(): number {
    return this.ctx.jobId;
  }

  /** Runs the job to its end; never throws (failures go to the client as jobFailed). */
  async run(): Promise<void> {
    const { ctx } = this;
    ctx.metrics.add('jobsTotal');
    const offLoss = ctx.registry.onLoss((host, reason) => {
      if (!this.devices.uses(host)) return;
      this.lostHosts.add(host);
      if (this.engine) this.devices.closeHostLinks(host, `host ${host} lost: ${reason}`);
      else this.failFromHost(host, new Error(`host ${host} lost: ${reason}`), true);
    });
    try {
      await this.start();
      await this.loop();
      if (this.failure) throw this.failure;
    } catch (error) {
      const failure = this.failure ?? (error instanceof Error ? error : new Error(String(error)));
      const deviceHost = failure instanceof DeviceLostError ? hostOfDevice(failure.deviceName) : undefined;
      const lostHost = this.lostHost ?? deviceHost;
      ctx.metrics.add('jobsFailedTotal');
      const message =
        deviceHost !== undefined && this.lostHost === undefined
          ? `host ${deviceHost} lost: ${failure.message}`
          : failure.message;
      ctx.log(`coordinator: job ${ctx.jobId} failed: ${message}`);
      this.client.post({
        tag: 'jobFailed',
        message: message.slice(0, 4096),
        ...(lostHost ? { lostHost: lostHost.slice(0, 256) } : {}),
      });
    } finally {
      offLoss();
      ctx.registry.jobErrorListeners.delete(this.devices.deviceJobId);
      ctx.cancelDeviceLinks(this.devices.deviceJobId, 'job ended');
      await this.release().finally(this.markReleased);
      ctx.log(`coordinator: job ${ctx.jobId} ended`);
    }
  }

  private async start(): Promise<void> {
    const { model, parallel: parallelConfig, cache } = this.open.config;
    // Opening reads only the safetensors headers; it refuses a config whose dimensions do not
    // match the tensors before numModelParams or any host builds tables sized by the config.
    const checkpoint = Checkpoint.open(model.dir);
    this.kvDtype = kvDtypeForCheckpoint(cache.kvDtype ?? ENGINE_DEFAULTS.kvDtype, checkpoint);
    checkpoint.close();
    const config = checkpoint.config;
    this.model = config;
    this.vocabSize = config.vocabSize;
    const parallel = parseParallelConfig(parallelConfig.layout);
    validateForModel(parallel, config);
    // Before any device starts: the decode layout and both re-shard plans (refused if they cannot fit).
    const seesaw = planSeesawJob(this.open.config, config, parallel);
    const numDevices = parallel.dp * parallel.tp * parallel.pp;
    if (parallelConfig.numDevices !== numDevices) {
      throw new Error(
        `the job's numDevices ${parallelConfig.numDevices} does not match its layout ${parallelConfig.layout} (${numDevices} devices)`,
      );
    }
    const replicas = await this.launch({ parallel, seesaw, engineConfig: this.open.config });
    this.client.post({
      tag: 'jobReady',
      jobId: this.ctx.jobId,
      layout: this.layout,
      weightBytes: replicas.reduce((sum, r) => sum + r.weightBytes, 0),
      kvCacheBytes: replicas.reduce((sum, r) => sum + r.kvCacheBytes, 0),
      numKvBlocks: replicas.reduce((sum, r) => sum + r.numKvBlocks, 0),
      blockSize: replicas[0]!.blockSize,
      maxModelLen: this.engine!.maxModelLen,
      kvDtype: this.kvDtype,
    });
  }

  /**
   * Places `layout` on the hosts' free devices, has their agents spawn the device workers under
   * the current device job id, attaches to them and starts the engine over them.
   */
  private async launch(layout: JobLayout): Promise<JobEngine['replicas']> {
    const { ctx, kvDtype, devices } = this;
    const config = this.model!;
    const { parallel, seesaw, engineConfig } = layout;
    const { model, cache } = engineConfig;
    this.current = layout;
    ctx.registry.jobErrorListeners.set(devices.deviceJobId, (host, message) =>
      this.failFromHost(host, new Error(`host ${host} could not start its devices: ${message}`), false),
    );
    // Every host's store gets the same capacity and all dp engines, so each engine's slot
    // range exists on every host: a replica spanning hosts swaps each rank into its own host.
    const hostKv: SpawnHostKv | undefined =
      cache.hostKvBytes === undefined
        ? undefined
        : {
            modelDir: model.dir,
            blockSize: cache.blockSize,
            kvDtype,
            capacityBytes: cache.hostKvBytes,
            numEngines: parallel.dp,
          };
    const engineHostKv: EngineHostKv | undefined =
      hostKv && engineHostKvFor(config, hostKv.blockSize, hostKv.capacityBytes, hostKv.numEngines, kvDtype);
    await devices.place(parallel);
    this.layout = `${jobLayoutName(layout)} on ${devices.placement}`;
    ctx.log(`coordinator: job ${ctx.jobId}: ${this.layout}, model ${model.dir}`);
    const actors = await devices.spawnAndAttach(
      {
        parallel,
        ...(seesaw ? { decode: seesaw.decode } : {}),
        ...(hostKv ? { hostKv } : {}),
        ...(engineConfig.parallel.hostWeightCache
          ? { hostWeightCache: engineConfig.parallel.hostWeightCache }
          : {}),
      },
      () => this.failure,
    );
    const { engine, replicas } = await startJobEngine(
      actors,
      parallel,
      seesaw,
      config,
      engineConfig,
      engineHostKv,
      kvDtype,
      (line) => ctx.log(`coordinator: job ${ctx.jobId}: ${line}`),
    );
    this.engine = engine;
    return replicas;
  }

  /**
   * Every replica of a Seesaw job lost a device: gives the devices back, chooses a layout for
   * the healthy ones (replanJobLayout), starts it under a fresh device job id and resumes the
   * unfinished requests there from their prompts. Throws (the job fails) when nothing fits.
   */
  private async replan(lost: ReplicasLostError): Promise<void> {
    const { ctx } = this;
    const from = this.current as JobLayout & { seesaw: NonNullable<JobLayout['seesaw']> };
    const fromName = this.layout;
    await this.awaitHostLosses(lost.lostDevices);
    const numHealthy = countHealthyDevices(
      this.devices.hosts,
      lost.lostDevices,
      (host) => !this.lostHosts.has(host) && ctx.registry.get(host) !== undefined,
    );
    // The lost replicas' devices first (as RecoveringCluster), then every device of the job.
    await this.engine?.closeLostReplicas();
    this.retireEngine();
    await this.releaseDevices('abort');
    const to = replanJobLayout(from, numHealthy, this.model!);
    this.devices = new JobDevices(ctx, ctx.nextDeviceJobId(), this.lostHosts);
    ctx.log(
      `coordinator: job ${ctx.jobId}: every replica lost a device (${lost.lostDevices.join('; ')}); ` +
        `re-planned ${fromName} -> ${jobLayoutName(to)} on ${numHealthy} healthy ` +
        `device${numHealthy === 1 ? '' : 's'}; resuming ${lost.unfinishedRequests.length} unfinished ` +
        `request${lost.unfinishedRequests.length === 1 ? '' : 's'} there from their prompts`,
    );
    await this.launch(to);
    for (const request of lost.unfinishedRequests) this.engine!.addRequest(request);
  }

  /**
   * Waits (up to HOST_LOSS_GRACE_MS) until each host of a lost device is known lost or dropped:
   * a device worker that died alone leaves its host up, and the wait ends at the grace.
   */
  private async awaitHostLosses(lostDevices: readonly string[]): Promise<void> {
    const hosts = new Set(lostDevices.map(hostOfDevice).filter((h): h is string => h !== undefined));
    const isSettled = () =>
      [...hosts].every((host) => this.lostHosts.has(host) || this.ctx.registry.get(host) === undefined);
    if (isSettled()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, HOST_LOSS_GRACE_MS);
      const off = this.ctx.registry.onLoss(() => {
        if (isSettled()) done();
      });
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  /** The current engine's counters plus those of the engines re-plans retired. */
  private jobStats(): EngineStats {
    const stats: Record<string, number> = { ...this.retiredStats };
    for (const [key, value] of Object.entries(this.engine?.stats ?? {}))
      if (typeof value === 'number') stats[key] = (stats[key] ?? 0) + value;
    return stats as unknown as EngineStats;
  }

  private retireEngine(): void {
    for (const [key, value] of Object.entries(this.engine?.stats ?? {}))
      if (typeof value === 'number') this.retiredStats[key] = (this.retiredStats[key] ?? 0) + value;
    this.engine = undefined;
  }

  /** Steps while there is work; waits for more requests while idle; ends when the client leaves. */
  private async loop(): Promise<void> {
    const { metrics } = this.ctx;
    while (!this.isClientGone && !this.failure) {
      const engine = this.engine!;
      while (this.queued.length) this.admit(engine, this.queued.shift()!);
      if (!engine.hasUnfinishedRequests()) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      let outputs: Awaited<ReturnType<JobEngineCluster['step']>>;
      try {
        outputs = await engine.step();
      } catch (error) {
        // A static job fails here as before; a Seesaw job goes on on the healthy devices.
        if (!(error instanceof ReplicasLostError && this.current?.seesaw)) throw error;
        await this.replan(error);
        continue;
      }
      const stats = this.jobStats();
      metrics.add('stepsTotal', stats.numSteps - this.numStepsReported);
      this.numStepsReported = stats.numSteps;
      for (const output of outputs) {
        this.liveRequestIds.delete(output.requestId);
        this.stopAsked.delete(output.requestId);
        metrics.add('requestsFinishedTotal');
        metrics.add('tokensGeneratedTotal', output.outputTokenIds.length);
        metrics.add('promptTokensTotal', output.promptTokenIds.length);
        this.client.post({ tag: 'requestFinished', output, stats: { ...stats } });
      }
      await yieldToEventLoop();
    }
  }

  /**
   * Queues one submitted request, or answers requestRejected for it alone when it can never run
   * (the other requests of its batch go on).
   */
  private admit(engine: JobEngineCluster, submitted: JobRequest): void {
    const request = this.engineRequestOf(submitted);
    try {
      checkJobRequest(request, this.vocabSize, this.liveRequestIds);
      engine.addRequest(request);
      this.liveRequestIds.add(request.requestId);
    } catch (error) {
      if (!(error instanceof RequestRejectedError)) throw error;
      this.ctx.metrics.add('requestsRejectedTotal');
      this.client.post({
        tag: 'requestRejected',
        requestId: request.requestId,
        message: error.message.slice(0, 4096),
      });
    }
  }

  /**
   * The engine request of a submitted one. With reportProgress: its new tokens go to the client
   * after each step (requestProgress), and a stopRequests from the client ends it through the
   * engine's own early stop (stopWhen), at its next sampled token.
   */
  private engineRequestOf(submitted: JobRequest): EngineRequest {
    const { reportProgress, ...request } = submitted;
    if (reportProgress !== true) return request;
    const { requestId } = request;
    let numReported = 0;
    return {
      ...request,
      stopWhen: () => this.stopAsked.has(requestId),
      onProgress: (outputTokenIds) => {
        // Fewer outputs than reported: the request started over (recovery on another replica),
        // and a stop asked for the old outputs no longer applies (the client asks again).
        const offset = Math.min(numReported, outputTokenIds.length - 1);
        if (offset < numReported) this.stopAsked.delete(requestId);
        this.client.post({
          tag: 'requestProgress',
          requestId,
          offset,
          tokenIds: outputTokenIds.slice(offset),
        });
        numReported = outputTokenIds.length;
      },
    };
  }

  /** A host failed or was lost before the job started: the start fails, naming it. */
  private failFromHost(host: string, error: Error, isLost: boolean): void {
    if (isLost) this.lostHost ??= host;
    this.failure ??= error;
    this.ctx.cancelDeviceLinks(this.devices.deviceJobId, error.message);
    this.devices.closeHostLinks(host, error.message);
    this.wake?.();
  }

  private async release(): Promise<void> {
    await this.releaseDevices(this.failure ? 'abort' : 'drain');
    this.client.close('job ended');
  }

  /** Closes the current devices and gives them back to their hosts. */
  private async releaseDevices(mode: 'drain' | 'abort'): Promise<void> {
    this.ctx.registry.jobErrorListeners.delete(this.devices.deviceJobId);
    await this.devices.release(mode);
  }
}
