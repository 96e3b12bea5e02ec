/**
 * One device actor inside a worker thread: answers the coordinator's hello, loads its shard on
 * loadShard (device-worker-shard.ts), then executes steps strictly in arrival order, one at a
 * time (device-worker-step-runner.ts: pipeline hand-offs, swaps, tiered-KV write-backs and
 * prefetches), and switches layout on reshard between steps (device-worker-reshard.ts).
 * Failures become `error` messages, never a silent death.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  acceptHello,
  type CoordinatorToDevice,
  type DeviceError,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  type LoadShard,
  parentWorkerEndpoint,
  type Ready,
  type Reshard,
  type ReshardDone,
  type StepBatch,
  type WorkerPortEndpoint,
} from '@seesaw/protocol';
import { deviceClockMs, deviceTimeOf } from './device-clock.ts';
import type { DeviceWorkerData } from './device-worker-data.ts';
import { type LinkEndpoint, receiveLinks } from './device-worker-links.ts';
import { DeviceOutOfMemoryError } from './device-worker-memory.ts';
import { switchLayout } from './device-worker-reshard.ts';
import { type LoadedShard, loadShard, type OpenedShard, switchedShard } from './device-worker-shard.ts';
import { runStep, type StepReplies } from './device-worker-step-runner.ts';
import { cpuStepDevice, type StepDeviceFactory } from './step-device.ts';
import type { SequenceSampling } from './step-sampler.ts';

/** How long a reshard waits for a step this device is still finishing (see finishCurrentStep). */
const STEP_DRAIN_TIMEOUT_MS = 60_000;

type CoordinatorEndpoint = WorkerPortEndpoint<DeviceToCoordinator, CoordinatorToDevice>;

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
  /** Set by load: what re-sharding needs (the load's budget, both layouts' links and groups, the KV arena). */
  private loaded: ({ load: LoadShard } & Omit<OpenedShard, 'shard' | 'ready'>) | undefined;
  private isResharding = false;
  /** Why the last reshard failed after the old shard was dropped: the device has none now. */
  private reshardFailure: string | undefined;

  /** Where runStep answers; read at call time, so endpoint being set after this is fine. */
  private readonly replies: StepReplies = {
    coordinator: { post: (message, tensors) => this.endpoint.post(message, tensors) },
    stepFailed: (error, stepId) => this.postError('stepFailed', error, stepId),
  };

  private constructor(
    private readonly endpoint: CoordinatorEndpoint,
    private readonly data: DeviceWorkerData,
    private readonly createDevice: StepDeviceFactory,
  ) {}

  /**
   * Runs the worker until shutdown; resolves once the hello is answered (or refused).
   * createDevice is the backend: every shard this worker loads or re-shards to runs on it.
   */
  static async start(createDevice: StepDeviceFactory = cpuStepDevice): Promise<void> {
    const data = workerData as DeviceWorkerData;
    const log = (line: string) => logLine(data.deviceName, line);
    const endpoint: CoordinatorEndpoint = parentWorkerEndpoint({
      accept: INBOUND_TAGS.coordinatorToDevice,
      name: 'coordinator',
      log,
    });
    const runtime = new DeviceWorkerRuntime(endpoint, data, createDevice);
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
      case 'clockProbe':
        // Answered at once, before any queued work: the round trip bounds the offset's error.
        this.endpoint.post({
          tag: 'clockReply',
          seq: message.seq,
          sentAtMs: message.sentAtMs,
          deviceMs: deviceClockMs(),
        });
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
    const opened = await loadShard(load, {
      data: this.data,
      linksArrived: this.linksArrived,
      tpLinks: this.tpLinks,
      createDevice: this.createDevice,
      log: (line) => this.log(line),
    });
    this.shard = opened.shard;
    this.loaded = {
      load,
      layouts: opened.layouts,
      kvStoreLink: opened.kvStoreLink,
      kvArena: opened.kvArena,
      hostWeights: opened.hostWeights,
      weightArena: opened.weightArena,
    };
    return opened.ready;
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
      let sampling = new Map<number, SequenceSampling>();
      // Unset once retired, so nothing here keeps the old device and its KV cache reachable.
      const retire = () => {
        const retired = this.retireShard(current!);
        current = undefined;
        sampling = retired.sampling;
        return retired.old;
      };
      const cachedBefore = loaded.hostWeights?.numBytes ?? 0;
      const next = await switchLayout(
        message,
        loaded.load,
        loaded.layouts,
        current.spec,
        retire,
        this.createDevice,
        { kvArena: loaded.kvArena, hostWeights: loaded.hostWeights, weightArena: loaded.weightArena },
      ).catch((error: unknown) => {
        // Refused before `retire` ran: the device still serves its current layout.
        if (this.shard) throw error;
        this.reshardFailure = `reshard ${message.reshardId} failed: ${error instanceof Error ? error.message : String(error)}`;
        throw error;
      });
      next.device.restoreSequenceSampling(sampling);
      const cached = loaded.hostWeights?.numBytes ?? 0;
      if (cached > cachedBefore) {
        this.log(
          `host weight cache: ${(cached / 2 ** 20).toFixed(1)} MiB with layout ${message.layout}'s shard`,
        );
      }
      this.shard = switchedShard(next, loaded.kvStoreLink);
      // As at load: the first step of the new layout swaps by shared-memory copies, not frames
      // (a decode phase's first step swaps its quarter of the batch in while the devices wait).
      await this.shard.swapper?.sharing;
      const endMs = performance.now();
      return {
        ...next.done,
        ms: endMs - startMs,
        startMs: deviceTimeOf(startMs),
        endMs: deviceTimeOf(endMs),
      };
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

  /** Runs queued steps one at a time, in arrival order. */
  private async pump(): Promise<void> {
    if (this.isPumping) return;
    this.isPumping = true;
    try {
      for (let batch = this.steps.shift(); batch; batch = this.steps.shift()) {
        try {
          const shard = this.shard;
          if (!shard) throw new Error(`step ${batch.stepId} before loadShard`);
          await runStep(shard, batch, this.replies);
        } catch (error) {
          this.postError('stepFailed', error, batch.stepId);
        }
      }
    } finally {
      this.isPumping = false;
    }
    if (this.isDraining) this.stop();
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
