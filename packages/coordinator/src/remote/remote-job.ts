/**
 * One job on the coordinator daemon, from openJob to its end: places the DP replicas on hosts and
 * has their agents spawn the device workers (JobDevices: a replica that fits no single host is
 * split over hosts that accept peer links), drives every device over its relayed WebSocket with
 * the same DeviceActorHandle logic as a local cluster, runs a ClusterEngine over the replicas (a
 * job with a decode layout: the local path's SeesawClusterEngine, job-engine.ts) and streams each
 * finished request back to the client (job-requests.ts). A host lost while the job runs (its
 * links closed, or its agent silent past the heartbeat deadline) has its device links closed, so
 * the ClusterEngine drops its replicas and requeues their requests on the others. When no replica
 * is left, a Seesaw job re-plans onto the healthy devices (job-replan.ts: a pair that fits them,
 * else a static layout), starts them under a new device job id and resumes its unfinished
 * requests there from their prompts; a static job, or one with nothing to re-plan onto, or a host
 * that fails before the job started, ends with jobFailed naming the host (results already sent
 * stay with the client).
 */

import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  Checkpoint,
  kvDtypeForCheckpoint,
  type ModelConfig,
  parseParallelConfig,
  validateForModel,
} from '@seesaw/model';
import { ENGINE_DEFAULTS, type KvCacheDType, type OpenJob, type SpawnHostKv } from '@seesaw/protocol';
import { DeviceLostError } from '../cluster/device-errors.ts';
import { type EngineHostKv, engineHostKvFor } from '../cluster/local-host-kv.ts';
import { ReplicasLostError } from '../cluster/recovery-errors.ts';
import { awaitHostLosses } from './host-loss-grace.ts';
import { JobDevices } from './job-devices.ts';
import { type JobEngine, type JobEngineCluster, planSeesawJob, startJobEngine } from './job-engine.ts';
import { countHealthyDevices, type JobLayout, jobLayoutName, replanJobLayout } from './job-replan.ts';
import { JobRequests } from './job-requests.ts';
import type { JobClientLink, RemoteJobContext } from './remote-job-context.ts';
import { hostOfDevice } from './remote-replicas.ts';
import { RetiredEngineStats } from './retired-engine-stats.ts';

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
  private readonly retiredStats = new RetiredEngineStats();
  private failure: Error | undefined;
  private isClientGone = false;
  private wake: (() => void) | undefined;
  private readonly requests: JobRequests;
  private engine: JobEngineCluster | undefined;
  private vocabSize = 0;
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
    this.requests = new JobRequests(client, ctx.metrics);
    this.released = new Promise((resolve) => {
      this.markReleased = resolve;
    });
    client.onMessage((message) => {
      if (this.requests.receive(message)) this.wake?.();
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
    await awaitHostLosses(ctx.registry, this.lostHosts, lost.lostDevices);
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

  private retireEngine(): void {
    this.retiredStats.add(this.engine);
    this.engine = undefined;
  }

  /** Steps while there is work; waits for more requests while idle; ends when the client leaves. */
  private async loop(): Promise<void> {
    const { metrics } = this.ctx;
    while (!this.isClientGone && !this.failure) {
      const engine = this.engine!;
      this.requests.admitQueued(engine, this.vocabSize);
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
      const stats = this.retiredStats.plus(this.engine);
      metrics.add('stepsTotal', stats.numSteps - this.numStepsReported);
      this.numStepsReported = stats.numSteps;
      this.requests.reportFinished(outputs, stats);
      await yieldToEventLoop();
    }
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
