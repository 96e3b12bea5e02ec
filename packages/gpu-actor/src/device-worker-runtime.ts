/**
 * One device actor inside a worker thread: answers the coordinator's hello, loads its shard on
 * loadShard, then executes steps strictly in arrival order. A non-first pipeline stage takes
 * its input hidden state from the previous stage's link, a non-last stage hands its output to
 * the next stage's link (TP rank r to TP rank r: every rank holds the whole all-reduced hidden
 * state, so each link carries one copy and no rank fans out), and only the last stage's TP
 * rank 0 answers stepDone. With a link to the host's kv-store, a step's swaps move this rank's
 * layers x KV heads before its compute (KvStoreSwapper); tiered-KV write-backs go out layer by
 * layer during the compute and are acknowledged before the last stage answers, and prefetches
 * land in the background, awaited by the first later step that touches their sequence.
 * Failures become `error` messages, never a silent death.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Checkpoint, type ShardPosition, type ShardSpec, shardSpec } from '@seesaw/model';
import {
  acceptHello,
  type CoordinatorToDevice,
  type DeviceError,
  type DeviceSamplingParams,
  type DeviceToCoordinator,
  type DeviceToKvStore,
  INBOUND_TAGS,
  type KvStoreToDevice,
  type LoadShard,
  parentWorkerEndpoint,
  parseParallelism,
  type Ready,
  type Reshard,
  type ReshardDone,
  type StepBatch,
  stepDoneMessage,
  type WorkerPortEndpoint,
} from '@seesaw/protocol';
import { CpuDevice } from './cpu-device.ts';
import { DetachableLink } from './detachable-link.ts';
import { type KvStoreLinkEndpoint, KvStoreSwapper, openKvStoreLink } from './device-kv-store-swap.ts';
import { DEFAULT_GROUP_TIMEOUT_MS, type DeviceWorkerData } from './device-worker-data.ts';
import { DeviceLayouts } from './device-worker-layouts.ts';
import {
  type ActivationInbox,
  type LinkEndpoint,
  type OpenedLinks,
  openPeerGroup,
  receiveLinks,
} from './device-worker-links.ts';
import { DeviceOutOfMemoryError, kvCacheBudget, shardWeightBytes } from './device-worker-memory.ts';
import { switchLayout } from './device-worker-reshard.ts';
import { HeldWeights } from './held-weights.ts';
import { type PrefetchWait, seqIdsTouchedBy } from './kv-prefetch-table.ts';
import { loadModelWeights, type ModelWeights } from './model-weights.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import { SharedMemoryGroup } from './shared-memory-group.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';

/** How long a reshard waits for a step this device is still finishing (see finishCurrentStep). */
const STEP_DRAIN_TIMEOUT_MS = 60_000;

type CoordinatorEndpoint = WorkerPortEndpoint<DeviceToCoordinator, CoordinatorToDevice>;

interface LoadedShard {
  device: CpuDevice;
  spec: ShardSpec;
  links: OpenedLinks;
  inbox: ActivationInbox | undefined;
  /** Swaps to the host's kv-store; absent without a host KV tier. */
  swapper: KvStoreSwapper | undefined;
  /** The forward pass's weights and the raw checkpoint slices they were made of (re-sharding, digests). */
  weights: ModelWeights;
  held: HeldWeights;
  /** Which layout this shard is (0 prefill, 1 decode; 0 for a device that never re-shards). */
  layout: number;
  /** The swapper's view of the kv-store link, detached when a re-shard retires the swapper. */
  kvStoreView: DetachableLink<DeviceToKvStore, KvStoreToDevice> | undefined;
}

/**
 * A swapper for `device`'s cache (its layers x KV heads) over a detachable view of the device's
 * one kv-store link. KvStoreSwapper only uses the Endpoint methods of its link, which the view has.
 */
function kvStoreSwapperOver(link: KvStoreLinkEndpoint, device: CpuDevice, spec: ShardSpec) {
  const view = new DetachableLink<DeviceToKvStore, KvStoreToDevice>(link);
  const swapper = new KvStoreSwapper(
    view as unknown as KvStoreLinkEndpoint,
    device.kvCache,
    spec.layers,
    spec.kvHeads,
  );
  return { swapper, view };
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
  /** Set by load: what re-sharding needs (the load's budget, both layouts' links and groups). */
  private loaded:
    | { load: LoadShard; layouts: DeviceLayouts; kvStoreLink: KvStoreLinkEndpoint | undefined }
    | undefined;
  private isResharding = false;
  /** Why the last reshard failed after the old shard was dropped: the device has none now. */
  private reshardFailure: string | undefined;

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
        if (this.isResharding || this.reshardFailure) {
          const { stepId } = message.batch;
          const why = this.isResharding ? 'arrived during a reshard' : `has no shard: ${this.reshardFailure}`;
          this.postError('stepFailed', new Error(`step ${stepId} ${why}`), stepId);
          return;
        }
        this.steps.push(message.batch);
        void this.pump();
        return;
      case 'reshard':
        this.reshard(message).then(
          (done) => this.endpoint.post(done),
          (error: unknown) =>
            this.postError(error instanceof DeviceOutOfMemoryError ? 'outOfMemory' : 'reshardFailed', error),
        );
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
    const [layouts, kvStoreLink] = await Promise.all([
      DeviceLayouts.open(ports, this.data, {
        ...linkOptions,
        hiddenSize: plan.hiddenSize,
        log: (line) => this.log(line),
      }),
      ports.kvStore ? openKvStoreLink(ports.kvStore, linkOptions) : undefined,
    ]);
    layouts.setGroup(0, group);
    const { links, inbox } = layouts.links(0);
    if (!plan.spec.isFirstStage && !links.previous)
      throw new Error(`stage ${load.ppStage} has no link to the previous stage`);
    if (!plan.spec.isLastStage && !links.next)
      throw new Error(`stage ${load.ppStage} has no link to the next stage`);
    const held = new HeldWeights();
    const checkpoint = Checkpoint.open(load.modelDir);
    let device: CpuDevice;
    let weights: ModelWeights;
    try {
      weights = loadModelWeights(checkpoint, plan.spec, held);
      device = CpuDevice.fromWeights(checkpoint.config, weights, {
        numThreads: load.numThreads,
        kvCacheBytes: plan.kvCacheBytes,
        blockSize: load.blockSize,
        group,
      });
    } finally {
      checkpoint.close();
    }
    const kv = kvStoreLink ? kvStoreSwapperOver(kvStoreLink, device, plan.spec) : undefined;
    this.shard = {
      device,
      spec: plan.spec,
      links,
      inbox,
      swapper: kv?.swapper,
      kvStoreView: kv?.view,
      weights,
      held,
      layout: 0,
    };
    this.loaded = { load, layouts, kvStoreLink };
    const ready: Ready = {
      tag: 'ready',
      numKvBlocks: device.numKvBlocks,
      weightBytes: device.weightBytes,
      kvCacheBytes: device.kvCacheBytes,
    };
    if (load.isWeightDigestReturned) ready.weightDigest = held.digest();
    return ready;
  }

  /**
   * Switches to the other layout: only between steps (the coordinator sends it once every step
   * has answered), after this device's kv-store puts are acknowledged. The old device and its KV
   * cache are dropped first; the weights are re-sharded by the plan (device-worker-reshard.ts).
   * A failed switch leaves no shard: later steps fail until the device is replaced.
   */
  private async reshard(message: Reshard): Promise<ReshardDone> {
    const startMs = performance.now();
    const loaded = this.loaded;
    if (!this.shard || !loaded) throw new Error(`reshard ${message.reshardId} before loadShard`);
    if (this.isResharding) throw new Error(`reshard ${message.reshardId} while another reshard runs`);
    if (this.steps.length > 0) {
      throw new Error(
        `reshard ${message.reshardId}: ${this.steps.length} step(s) are queued; a reshard comes only ` +
          'after every step has answered',
      );
    }
    this.isResharding = true;
    try {
      await this.finishCurrentStep(message.reshardId);
      let current: LoadedShard | undefined = this.shard;
      await current.swapper?.flush();
      let sampling = new Map<number, DeviceSamplingParams>();
      // Unset once retired, so nothing here keeps the old device and its KV cache reachable.
      const retire = () => {
        const retired = this.retireShard(current!);
        current = undefined;
        sampling = retired.sampling;
        return retired.old;
      };
      const next = await switchLayout(message, loaded.load, loaded.layouts, current.spec, retire).catch(
        (error: unknown) => {
          // Refused before `retire` ran: the device still serves its current layout.
          if (this.shard) throw error;
          this.reshardFailure = `reshard ${message.reshardId} failed: ${error instanceof Error ? error.message : String(error)}`;
          throw error;
        },
      );
      next.device.restoreSequenceSampling(sampling);
      const kv = loaded.kvStoreLink
        ? kvStoreSwapperOver(loaded.kvStoreLink, next.device, next.spec)
        : undefined;
      this.shard = {
        device: next.device,
        spec: next.spec,
        links: next.links.links,
        inbox: next.links.inbox,
        swapper: kv?.swapper,
        kvStoreView: kv?.view,
        weights: next.weights,
        held: next.held,
        layout: next.layout,
      };
      return { ...next.done, ms: performance.now() - startMs };
    } finally {
      this.isResharding = false;
    }
  }

  /**
   * Waits until the step this device is still finishing, if any, is done. Every step has been
   * answered when a reshard comes, but only by the answering device: another TP rank may still
   * be in its last step's tail (awaiting its own write-back acknowledgements), so it finishes
   * that first. Polls: the pump is not this method's to change.
   */
  private async finishCurrentStep(reshardId: number): Promise<void> {
    const deadline = performance.now() + STEP_DRAIN_TIMEOUT_MS;
    while (this.isPumping) {
      if (performance.now() > deadline)
        throw new Error(
          `reshard ${reshardId}: the running step did not finish within ${STEP_DRAIN_TIMEOUT_MS} ms`,
        );
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /**
   * Drops the loaded shard's device, KV cache and swapper (nothing keeps them reachable after
   * this), returning what a re-shard still needs: the old weights (freed unit by unit as the new
   * ones are built) and the sequences' sampling settings.
   */
  private retireShard(shard: LoadedShard) {
    const old = { weights: shard.weights, held: shard.held };
    const sampling = shard.device.sequenceSampling();
    shard.kvStoreView?.detach();
    shard.device.close();
    this.shard = undefined;
    return { old, sampling };
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
    const swapper = this.swapperFor(shard, batch);
    // A swap-out must not copy blocks whose prefetched data is still arriving.
    const swapOutSeqIds = (batch.swapOuts ?? []).map((swap) => swap.seqId);
    const beforeSwaps = await this.waitForPrefetches(swapper, batch, swapOutSeqIds);
    // Claimed now, before applySwaps issues this step's own prefetches, which it must not wait for.
    const waiting = this.waitForPrefetches(swapper, batch, seqIdsTouchedBy(batch));
    waiting.catch(() => {}); // awaited below, after the swaps
    const swapStart = performance.now();
    const step = await this.applySwaps(shard, batch);
    // A swap done before compute is KV transfer time the step waits out in full: swap-ins count
    // as un-hidden swap-in time (both prefetch fields), swap-outs as write-back wait.
    const syncSwapMs = performance.now() - swapStart;
    const syncSwapInMs = batch.swapIns?.length ? syncSwapMs : 0;
    const syncSwapOutMs = batch.swapIns?.length ? 0 : batch.swapOuts?.length ? syncSwapMs : 0;
    const beforeCompute = await waiting;
    const prefetchWait = {
      waitedMs: beforeSwaps.waitedMs + beforeCompute.waitedMs + syncSwapInMs,
      numAwaited: beforeSwaps.numAwaited + beforeCompute.numAwaited,
    };
    const input = shard.inbox ? await shard.inbox.take(batch.stepId) : undefined;
    const writeBacks = this.kvStep(batch, () => swapper?.startWriteBacks(batch));
    const computeStart = performance.now();
    const output = await shard.device.executeStage(step, input, writeBacks?.onLayerKvWritten);
    const computeMs = performance.now() - computeStart;
    if ('hidden' in output) {
      const hiddenSize = shard.device.config.hiddenSize;
      const numTokens = output.hidden.length / hiddenSize;
      shard.links.next?.post(
        { tag: 'activations', stepId: batch.stepId, microBatch: 0, fromStage: shard.spec.ppStage, numTokens },
        [{ dtype: 'f32', shape: [numTokens, hiddenSize], data: output.hidden }],
      );
      // Only the last stage answers, so an earlier stage does not hold its next step for its
      // acknowledgements; a failure still reaches the coordinator, and flush() covers re-shards.
      writeBacks
        ?.finish()
        .catch((error: unknown) => this.postError('stepFailed', kvFailure(batch, error), batch.stepId));
      return;
    }
    // The answer means "the blocks may be freed and the host copy read": acknowledged puts only.
    const written = await writeBacks?.finish().catch((error: unknown) => {
      throw kvFailure(batch, error);
    });
    if (shard.spec.tpRank !== 0) return;
    const prefetchMs = swapper?.takeCompletedPrefetchMs() ?? 0;
    const hasTieredKv =
      !!(batch.kvWriteBacks?.length || batch.prefetches?.length) ||
      syncSwapInMs + syncSwapOutMs > 0 ||
      prefetchWait.numAwaited > 0 ||
      prefetchMs > 0;
    if (hasTieredKv) {
      output.kvTimings = {
        computeMs,
        prefetchWaitMs: prefetchWait.waitedMs,
        prefetchMs: prefetchMs + syncSwapInMs,
        writeBackMs: (written?.writeBackMs ?? 0) + syncSwapOutMs,
        writeBackWaitMs: (written?.writeBackWaitMs ?? 0) + syncSwapOutMs,
      };
    }
    const { message, tensors } = stepDoneMessage(output);
    this.endpoint.post(message, tensors);
  }

  /** The kv-store swapper, or an error when the step moves KV and this device has no link to one. */
  private swapperFor(shard: LoadedShard, batch: StepBatch): KvStoreSwapper | undefined {
    const movesKv = [batch.swapOuts, batch.swapIns, batch.kvWriteBacks, batch.prefetches].some(
      (l) => l?.length,
    );
    if (movesKv && !shard.swapper)
      throw new Error(
        `step ${batch.stepId} moves KV to or from the host, but this device has no link to a kv-store`,
      );
    return shard.swapper;
  }

  /** Waits for earlier prefetches of `seqIds` (see KvStoreSwapper.waitForPrefetches). */
  private async waitForPrefetches(
    swapper: KvStoreSwapper | undefined,
    batch: StepBatch,
    seqIds: number[],
  ): Promise<PrefetchWait> {
    if (!swapper || seqIds.length === 0) return { waitedMs: 0, numAwaited: 0 };
    try {
      return await swapper.waitForPrefetches(seqIds);
    } catch (error) {
      throw kvFailure(batch, error);
    }
  }

  /** Runs `start` (a synchronous kv-store call that may reject the step's lists), naming the step on failure. */
  private kvStep<T>(batch: StepBatch, start: () => T): T {
    try {
      return start();
    } catch (error) {
      throw kvFailure(batch, error);
    }
  }

  /**
   * Runs the step's swaps through the kv-store before compute and returns the step without them
   * or the tiered-KV lists (CpuDevice's own swapper is for an in-process store only). Swap-outs
   * are gathered and posted synchronously inside apply(), so the prefetches issued right after
   * can never land in a swapped-out block before it has been copied.
   */
  private async applySwaps(shard: LoadedShard, batch: StepBatch): Promise<StepBatch> {
    const { swapOuts, swapIns, kvWriteBacks: _writeBacks, prefetches, ...rest } = batch;
    const swapper = shard.swapper;
    if (!swapper) return rest;
    const swapped = swapOuts?.length || swapIns?.length ? swapper.apply(batch) : undefined;
    try {
      if (prefetches?.length) swapper.startPrefetches(batch);
    } catch (error) {
      await swapped?.catch(() => {});
      throw kvFailure(batch, error);
    }
    try {
      await swapped;
    } catch (error) {
      throw new Error(
        `step ${batch.stepId}: KV swap failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
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
    this.loaded?.layouts.close('device stopped');
    this.shard?.swapper?.close('device stopped');
    this.loaded?.kvStoreLink?.close('device stopped');
    for (const link of this.tpLinks) link.close('device stopped');
    this.endpoint.close('device stopped');
    parentPort?.unref();
  }
}

/** A tiered-KV failure as a step error naming the step. */
function kvFailure(batch: StepBatch, error: unknown): Error {
  return new Error(
    `step ${batch.stepId}: tiered KV failed: ${error instanceof Error ? error.message : String(error)}`,
  );
}
