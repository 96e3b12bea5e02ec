/**
 * One device actor inside a worker thread: answers the coordinator's hello, loads its shard on
 * loadShard, then executes steps strictly in arrival order. A non-first pipeline stage takes
 * its input hidden state from the previous stage's link, a non-last stage hands its output to
 * the next stage's link (TP rank r to TP rank r: every rank holds the whole all-reduced hidden
 * state, so each link carries one copy and no rank fans out), and only the last stage's TP
 * rank 0 answers stepDone. With a link to the host's kv-store, a step's swaps move this rank's
 * layers x KV heads before its compute (KvStoreSwapper). Failures become `error` messages, never
 * a silent death.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Checkpoint, type ShardPosition, type ShardSpec, shardSpec } from '@seesaw/model';
import {
  acceptHello,
  type CoordinatorToDevice,
  type DeviceError,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  type LoadShard,
  parentWorkerEndpoint,
  parseParallelism,
  type Ready,
  type StepBatch,
  stepDoneMessage,
  type WorkerPortEndpoint,
} from '@seesaw/protocol';
import { CpuDevice } from './cpu-device.ts';
import { KvStoreSwapper, openKvStoreLink } from './device-kv-store-swap.ts';
import type { DeviceWorkerData } from './device-worker-data.ts';
import {
  ActivationInbox,
  type LinkEndpoint,
  type OpenedLinks,
  openLinks,
  openPeerGroup,
  receiveLinks,
} from './device-worker-links.ts';
import { DeviceOutOfMemoryError, kvCacheBudget, shardWeightBytes } from './device-worker-memory.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import { SharedMemoryGroup } from './shared-memory-group.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';

type CoordinatorEndpoint = WorkerPortEndpoint<DeviceToCoordinator, CoordinatorToDevice>;

const DEFAULT_GROUP_TIMEOUT_MS = 30_000;

interface LoadedShard {
  device: CpuDevice;
  spec: ShardSpec;
  links: OpenedLinks;
  inbox: ActivationInbox | undefined;
  /** Swaps to the host's kv-store; absent without a host KV tier. */
  swapper: KvStoreSwapper | undefined;
}

/** Sizes the shard from the checkpoint header alone: weights, then the KV cache that fits beside them. */
function planMemory(load: LoadShard, position: ShardPosition) {
  const checkpoint = Checkpoint.open(load.modelDir);
  try {
    const config = checkpoint.config;
    const spec = shardSpec(config, position);
    if (spec.layers.start !== load.layers.start || spec.layers.end !== load.layers.end) {
      throw new Error(
        `loadShard layers [${load.layers.start}, ${load.layers.end}) differ from this stage's ` +
          `[${spec.layers.start}, ${spec.layers.end})`,
      );
    }
    const weightBytes = shardWeightBytes(checkpoint, spec);
    const kvCacheBytes = kvCacheBudget(load.deviceMemoryBytes, weightBytes);
    const cacheConfig = {
      ...config,
      numLayers: spec.layers.end - spec.layers.start,
      numKvHeads: spec.kvHeads.end - spec.kvHeads.start,
    };
    const bytesPerBlock = PagedKvCache.bytesPerBlock(cacheConfig, load.blockSize);
    if (kvCacheBytes < bytesPerBlock) {
      throw new DeviceOutOfMemoryError(
        `after ${weightBytes} bytes of weights, ${kvCacheBytes} of ${load.deviceMemoryBytes} bytes ` +
          `leave no room for one KV block of ${bytesPerBlock} bytes`,
      );
    }
    return { spec, weightBytes, kvCacheBytes, hiddenSize: config.hiddenSize };
  } finally {
    checkpoint.close();
  }
}

/** One line to stderr, prefixed with the device; accepted hellos are routine and only shown with SEESAW_DEBUG. */
function logLine(deviceName: string, line: string): void {
  if (!line.startsWith('handshake: accepted') || process.env.SEESAW_DEBUG)
    console.warn(`${deviceName}: ${line}`);
}

export class DeviceWorkerRuntime {
  private shard: LoadedShard | undefined;
  private readonly steps: StepBatch[] = [];
  private isPumping = false;
  private isDraining = false;
  private numHeartbeats = 0;
  private readonly linksArrived = receiveLinks();
  /** Links of a TP group spanning hosts, closed on stop. */
  private readonly tpLinks: LinkEndpoint[] = [];

  private constructor(
    private readonly endpoint: CoordinatorEndpoint,
    private readonly data: DeviceWorkerData,
  ) {}

  /** Runs the worker until shutdown; resolves once the hello is answered (or refused). */
  static async start(): Promise<void> {
    const data = workerData as DeviceWorkerData;
    const log = (line: string) => logLine(data.deviceName, line);
    const endpoint: CoordinatorEndpoint = parentWorkerEndpoint({
      accept: INBOUND_TAGS.coordinatorToDevice,
      name: 'coordinator',
      log,
    });
    const runtime = new DeviceWorkerRuntime(endpoint, data);
    try {
      await acceptHello(endpoint, {
        role: 'device',
        name: data.deviceName,
        expectedToken: data.token,
        allowedRoles: ['coordinator'],
        log,
      });
    } catch {
      // acceptHello has answered `refused`, logged the reason and closed the link.
      runtime.stop();
      return;
    }
    endpoint.onMessage((message) => runtime.handle(message));
    endpoint.onClose(() => runtime.stop());
  }

  private log(line: string): void {
    logLine(this.data.deviceName, line);
  }

  private handle(message: CoordinatorToDevice): void {
    switch (message.tag) {
      case 'loadShard':
        this.load(message).then(
          (ready) => this.endpoint.post(ready),
          (error: unknown) =>
            this.postError(error instanceof DeviceOutOfMemoryError ? 'outOfMemory' : 'loadFailed', error),
        );
        return;
      case 'step':
        this.steps.push(message.batch);
        void this.pump();
        return;
      case 'heartbeat':
        this.endpoint.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: Date.now() });
        return;
      case 'shutdown':
        if (message.mode === 'abort') this.stop();
        else {
          this.isDraining = true;
          if (!this.isPumping) this.stop();
        }
        return;
      case 'swapIn':
      case 'swapOut':
        this.postError('unsupported', new Error(`${message.tag} is not supported by this device yet`));
        return;
      case 'hello':
        this.postError('unexpected', new Error('hello after the handshake'));
        return;
      case 'protocolError':
        this.log(`coordinator rejected a frame: ${message.code}: ${message.message}`);
        return;
    }
  }

  private async load(load: LoadShard): Promise<Ready> {
    if (this.shard) throw new Error('loadShard: a shard is loaded already');
    const [, tp, pp] = parseParallelism(load.parallelism);
    const position: ShardPosition = { tp, tpRank: load.tpRank, pp, ppStage: load.ppStage };
    const plan = planMemory(load, position);
    const ports = await this.linksArrived;
    const group = tp > 1 ? this.joinGroup(tp, load.tpRank, ports.tpPeers) : undefined;
    const linkOptions = { deviceName: this.data.deviceName, token: this.data.token };
    const [device, links, kvStoreLink] = await Promise.all([
      CpuDevice.load(load.modelDir, {
        numThreads: load.numThreads,
        kvCacheBytes: plan.kvCacheBytes,
        blockSize: load.blockSize,
        shard: position,
        group,
      }),
      openLinks(ports, {
        deviceName: this.data.deviceName,
        token: this.data.token,
        log: (line) => this.log(line),
      }),
      ports.kvStore ? openKvStoreLink(ports.kvStore, linkOptions) : undefined,
    ]);
    if (!plan.spec.isFirstStage && !links.previous)
      throw new Error(`stage ${load.ppStage} has no link to the previous stage`);
    if (!plan.spec.isLastStage && !links.next)
      throw new Error(`stage ${load.ppStage} has no link to the next stage`);
    const inbox = links.previous ? new ActivationInbox(links.previous, plan.hiddenSize) : undefined;
    const swapper = kvStoreLink
      ? new KvStoreSwapper(kvStoreLink, device.kvCache, plan.spec.layers, plan.spec.kvHeads)
      : undefined;
    this.shard = { device, spec: plan.spec, links, inbox, swapper };
    return {
      tag: 'ready',
      numKvBlocks: device.numKvBlocks,
      weightBytes: device.weightBytes,
      kvCacheBytes: device.kvCacheBytes,
    };
  }

  private joinGroup(
    tp: number,
    tpRank: number,
    tpPeers: Array<MessagePort | undefined> | undefined,
  ): TensorParallelGroup {
    if (tpPeers) {
      const { group, endpoints } = openPeerGroup(tp, tpRank, tpPeers, this.data.deviceName);
      this.tpLinks.push(...endpoints);
      return group;
    }
    const descriptor = this.data.group;
    if (!descriptor) throw new Error(`TP ${tp} needs a group descriptor in workerData`);
    if (descriptor.size !== tp || descriptor.rank !== tpRank) {
      throw new Error(
        `group descriptor is rank ${descriptor.rank} of ${descriptor.size}, expected ${tpRank} of ${tp}`,
      );
    }
    return new SharedMemoryGroup(descriptor, this.data.groupTimeoutMs ?? DEFAULT_GROUP_TIMEOUT_MS);
  }

  /** Runs queued steps one at a time, in arrival order. */
  private async pump(): Promise<void> {
    if (this.isPumping) return;
    this.isPumping = true;
    try {
      for (let batch = this.steps.shift(); batch; batch = this.steps.shift()) {
        try {
          await this.runStep(batch);
        } catch (error) {
          this.postError('stepFailed', error, batch.stepId);
        }
      }
    } finally {
      this.isPumping = false;
    }
    if (this.isDraining) this.stop();
  }

  private async runStep(batch: StepBatch): Promise<void> {
    const shard = this.shard;
    if (!shard) throw new Error(`step ${batch.stepId} before loadShard`);
    const input = shard.inbox ? await shard.inbox.take(batch.stepId) : undefined;
    const output = await shard.device.executeStage(await this.applySwaps(shard, batch), input);
    if ('hidden' in output) {
      const hiddenSize = shard.device.config.hiddenSize;
      const numTokens = output.hidden.length / hiddenSize;
      shard.links.next?.post(
        { tag: 'activations', stepId: batch.stepId, microBatch: 0, fromStage: shard.spec.ppStage, numTokens },
        [{ dtype: 'f32', shape: [numTokens, hiddenSize], data: output.hidden }],
      );
    } else if (shard.spec.tpRank === 0) {
      const { message, tensors } = stepDoneMessage(output);
      this.endpoint.post(message, tensors);
    }
  }

  /**
   * Runs the step's swaps through the kv-store before compute and returns the step without them
   * (CpuDevice's own swapper is for an in-process store only).
   */
  private async applySwaps(shard: LoadedShard, batch: StepBatch): Promise<StepBatch> {
    if (!batch.swapOuts?.length && !batch.swapIns?.length) return batch;
    if (!shard.swapper)
      throw new Error(`step ${batch.stepId} swaps KV, but this device has no link to a kv-store`);
    try {
      await shard.swapper.apply(batch);
    } catch (error) {
      throw new Error(
        `step ${batch.stepId}: KV swap failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const { swapOuts: _outs, swapIns: _ins, ...rest } = batch;
    return rest;
  }

  private postError(code: string, error: unknown, requestStepId?: number): void {
    const text = error instanceof Error ? error.message : String(error);
    this.log(`${code}${requestStepId === undefined ? '' : ` (step ${requestStepId})`}: ${text}`);
    const message: DeviceError = { tag: 'error', code, message: text.slice(0, 4096) };
    if (requestStepId !== undefined) message.requestStepId = requestStepId;
    this.endpoint.post(message);
  }

  /** Closes every port, so the thread ends once its current work returns. */
  private stop(): void {
    this.shard?.device.close();
    this.shard?.links.previous?.close('device stopped');
    this.shard?.links.next?.close('device stopped');
    this.shard?.swapper?.close('device stopped');
    for (const link of this.tpLinks) link.close('device stopped');
    this.endpoint.close('device stopped');
    parentPort?.unref();
  }
}
