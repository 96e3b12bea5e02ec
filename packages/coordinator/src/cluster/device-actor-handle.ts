/**
 * The coordinator's handle on one device actor in a worker thread (spawned here, or on another
 * host and reached over a relayed link: attach): spawn and hello, loadShard until ready, reshard
 * until reshardDone (by reshardId), steps matched to their stepDone (or stepKv) by id, the
 * device clock's offset (probed right after hello), heartbeats, and loss
 * detection. Once the actor fails (worker exit or error, closed link, missed heartbeats, an
 * `error` message), every pending and later request rejects with that failure.
 */
import type { Worker } from 'node:worker_threads';
import {
  type CoordinatorToDevice,
  connectAndHello,
  type DeviceToCoordinator,
  type DeviceWorkerData,
  type DeviceWorkerLinkPorts,
  type Endpoint as FrameLink,
  INBOUND_TAGS,
  type LoadShard,
  linkTransferList,
  type Ready,
  type Reshard,
  type ReshardDone,
  type StepBatch,
  type StepKvTimings,
  type StepResult,
  spawnWorkerEndpoint,
  stepResultOf,
} from '@seesaw/protocol';
import { type ClockSample, coordinatorClockMs, DeviceClock } from './device-clock.ts';
import { DeviceLostError, DeviceStepError } from './device-errors.ts';
import { HeartbeatWatchdog } from './heartbeat-watchdog.ts';
import { PendingReplies } from './pending-replies.ts';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
/**
 * A device that has not answered for this long is lost. A worker answers between steps and, in a
 * long step, between layers at least once a second (LlamaForward), so this must exceed the
 * longest layer, not the longest step.
 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;
/** How long close() waits for a worker to exit on its own before terminating it. */
const DRAIN_EXIT_GRACE_MS = 5000;
const ABORT_EXIT_GRACE_MS = 200;
/** How long the hello may take (a worker starting on a busy machine loads its modules first). */
const HELLO_TIMEOUT_MS = 60_000;
/** Clock probes after hello; the one with the shortest round trip sets the offset. */
const NUM_CLOCK_PROBES = 5;
/** As long as the hello may take. */
const CLOCK_PROBE_TIMEOUT_MS = HELLO_TIMEOUT_MS;

export interface DeviceActorOptions {
  /** The device worker's entry module (gpu-actor's device-worker.ts). */
  workerUrl: URL | string;
  name: string;
  workerData: DeviceWorkerData;
  links?: DeviceWorkerLinkPorts;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Where frame rejections are reported; default console.warn. */
  log?: (line: string) => void;
}

/** The running actor behind a handle: a local worker thread, or a link to a remote one. */
interface ActorProcess {
  readonly worker: Worker | undefined;
  readonly exited: Promise<void>;
  terminate(): Promise<unknown>;
}

export interface AttachDeviceOptions {
  name: string;
  /** Token the device demands in the coordinator's hello. */
  token: string;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
}

export class DeviceActorHandle {
  private readonly pendingSteps = new PendingReplies<StepResult>();
  /** loadShard's ready (one load per actor: id 0). */
  private readonly pendingLoad = new PendingReplies<Ready>();
  private readonly pendingReshards = new PendingReplies<ReshardDone>();
  private readonly pendingKv = new PendingReplies<StepKvTimings>();
  private readonly pendingProbes = new PendingReplies<ClockSample>();
  private readonly allPending = [
    this.pendingSteps,
    this.pendingLoad,
    this.pendingReshards,
    this.pendingKv,
    this.pendingProbes,
  ];
  private deviceClock: DeviceClock | undefined;
  private readonly failureListeners = new Set<(error: Error) => void>();
  private failureError: Error | undefined;
  private isClosing = false;
  private readonly heartbeats: HeartbeatWatchdog;
  private constructor(
    readonly name: string,
    private readonly actor: ActorProcess,
    private readonly endpoint: FrameLink<CoordinatorToDevice, DeviceToCoordinator>,
    options: Pick<DeviceActorOptions, 'heartbeatIntervalMs' | 'heartbeatTimeoutMs'>,
  ) {
    this.heartbeats = new HeartbeatWatchdog(
      options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    );
    endpoint.onClose((reason) => this.fail(new DeviceLostError(name, reason)));
  }

  /** The actor's worker thread; throws for an actor attached over a remote link. */
  get worker(): Worker {
    if (!this.actor.worker) throw new Error(`${this.name} runs on another host: no local worker`);
    return this.actor.worker;
  }

  /**
   * A handle over an existing link to a device actor (e.g. a WebSocket a host agent relays to
   * its device worker): completes the hello on it. Closing the link is how the actor is stopped
   * when it does not exit on shutdown; the relaying agent then terminates the worker.
   */
  static async attach(
    endpoint: FrameLink<CoordinatorToDevice, DeviceToCoordinator>,
    options: AttachDeviceOptions,
  ): Promise<DeviceActorHandle> {
    const exited = new Promise<void>((resolve) => endpoint.onClose(() => resolve()));
    const actor: ActorProcess = {
      worker: undefined,
      exited,
      terminate: async () => endpoint.close('terminated by coordinator'),
    };
    const handle = new DeviceActorHandle(options.name, actor, endpoint, options);
    return handle.open(options.token, () => endpoint.close('handshake failed'));
  }

  /** Starts the worker and completes the hello; rejects (worker stopped) when refused. */
  static async spawn(options: DeviceActorOptions): Promise<DeviceActorHandle> {
    const { worker, endpoint } = spawnWorkerEndpoint<CoordinatorToDevice, DeviceToCoordinator>(
      options.workerUrl,
      {
        workerData: { ...options.workerData },
        name: options.name,
        accept: INBOUND_TAGS.deviceToCoordinator,
        log: options.log,
      },
    );
    const links = options.links ?? {};
    worker.postMessage({ seesawLinks: links }, linkTransferList(links));
    const actor: ActorProcess = {
      worker,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
      terminate: () => worker.terminate(),
    };
    const handle = new DeviceActorHandle(options.name, actor, endpoint, options);
    return handle.open(options.workerData.token, () => handle.close('abort'));
  }

  /**
   * Completes the hello with `token`, then takes the actor's messages and probes its clock;
   * `abandon` stops the actor when either fails.
   */
  private async open(token: string, abandon: () => unknown): Promise<DeviceActorHandle> {
    try {
      await connectAndHello(this.endpoint, {
        role: 'coordinator',
        name: 'coordinator',
        token,
        timeoutMs: HELLO_TIMEOUT_MS,
      });
      this.endpoint.onMessage((message, tensors) => this.receive(message, tensors));
      await this.measureClock();
    } catch (error) {
      await abandon();
      throw error;
    }
    return this;
  }

  /** The device's clock as estimated right after hello (maps its span times onto ours). */
  get clock(): DeviceClock {
    if (!this.deviceClock) throw new Error(`${this.name}: the clock is measured right after hello`);
    return this.deviceClock;
  }

  /** Probes the device's clock a few times, one probe at a time (see DeviceClock). */
  private async measureClock(): Promise<void> {
    const samples: ClockSample[] = [];
    for (let seq = 0; seq < NUM_CLOCK_PROBES; seq++) {
      if (this.failureError) throw this.failureError;
      const answer = this.pendingProbes.expect(seq);
      const timer = setTimeout(
        () =>
          this.pendingProbes.reject(
            seq,
            new Error(`${this.name}: no clockReply within ${CLOCK_PROBE_TIMEOUT_MS} ms of hello`),
          ),
        CLOCK_PROBE_TIMEOUT_MS,
      );
      this.endpoint.post({ tag: 'clockProbe', seq, sentAtMs: coordinatorClockMs() });
      try {
        samples.push(await answer);
      } finally {
        clearTimeout(timer);
      }
    }
    this.deviceClock = DeviceClock.fromSamples(samples);
  }

  /** The failure that ended this actor, if any. */
  get failure(): Error | undefined {
    return this.failureError;
  }

  /** Called once when the actor fails (immediately if it has failed already). */
  onFailure(listener: (error: Error) => void): void {
    if (this.failureError) queueMicrotask(() => listener(this.failureError!));
    else this.failureListeners.add(listener);
  }

  /** Sends loadShard; resolves with the device's ready message, then heartbeats begin. */
  load(shard: Omit<LoadShard, 'tag'>): Promise<Ready> {
    if (this.failureError) return Promise.reject(this.failureError);
    const ready = this.pendingLoad.expect(0);
    this.endpoint.post({ tag: 'loadShard', ...shard });
    return ready.then((message) => {
      this.startHeartbeats();
      return message;
    });
  }

  /**
   * Sends reshard (the coordinator has seen every step answered); resolves with the device's
   * reshardDone for the same reshardId, once its new weights, links and KV cache are in place.
   */
  reshard(reshard: Omit<Reshard, 'tag'>): Promise<ReshardDone> {
    if (this.failureError) return Promise.reject(this.failureError);
    if (this.pendingReshards.has(reshard.reshardId))
      return Promise.reject(new Error(`${this.name}: reshard ${reshard.reshardId} is in progress already`));
    const done = this.pendingReshards.expect(reshard.reshardId);
    this.endpoint.post({ tag: 'reshard', ...reshard });
    return done;
  }

  /** Posts a step; the caller decides which actor's answer to await (see expectStep). */
  postStep(batch: StepBatch): void {
    this.endpoint.post({ tag: 'step', batch });
  }

  /** The stepDone for `stepId` from this actor. */
  expectStep(stepId: number): Promise<StepResult> {
    if (this.failureError) return Promise.reject(this.failureError);
    return this.pendingSteps.expect(stepId);
  }

  /** The stepKv for `stepId` from this actor (a device that does not answer the step). */
  expectStepKv(stepId: number): Promise<StepKvTimings> {
    if (this.failureError) return Promise.reject(this.failureError);
    return this.pendingKv.expect(stepId);
  }

  /** Asks the worker to stop ('drain': after its queued steps) and waits for it to exit. */
  async close(mode: 'drain' | 'abort'): Promise<void> {
    this.isClosing = true;
    this.heartbeats.stop();
    this.endpoint.post({ tag: 'shutdown', mode });
    const grace = mode === 'drain' ? DRAIN_EXIT_GRACE_MS : ABORT_EXIT_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), grace);
    });
    const outcome = await Promise.race([this.actor.exited.then(() => 'exited' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') await this.actor.terminate();
    this.endpoint.close('closed by coordinator');
    this.rejectAll(new DeviceLostError(this.name, `closed (${mode})`));
  }

  private receive(message: DeviceToCoordinator, tensors: Parameters<typeof stepResultOf>[1]): void {
    this.heartbeats.heard();
    const unasked = (what: string) =>
      this.fail(new DeviceStepError(this.name, 'unexpected', `${what} unasked`));
    switch (message.tag) {
      case 'ready':
        this.pendingLoad.settle(0, message);
        return;
      case 'reshardDone':
        if (!this.pendingReshards.settle(message.reshardId, message))
          unasked(`reshardDone ${message.reshardId}`);
        return;
      case 'stepDone':
        // A step nobody awaits (answered by another rank) is dropped.
        if (this.pendingSteps.has(message.stepId))
          this.pendingSteps.settle(message.stepId, stepResultOf(message, tensors));
        return;
      case 'stepKv':
        if (!this.pendingKv.settle(message.stepId, message.kvTimings)) unasked(`stepKv ${message.stepId}`);
        return;
      case 'clockReply': {
        const { seq, sentAtMs, deviceMs } = message;
        this.pendingProbes.settle(seq, { sentAtMs, deviceMs, receivedAtMs: coordinatorClockMs() });
        return;
      }
      case 'error':
        this.fail(new DeviceStepError(this.name, message.code, message.message, message.requestStepId));
        return;
      case 'heartbeat':
        return;
      case 'protocolError':
        this.fail(new DeviceStepError(this.name, 'protocolError', `${message.code}: ${message.message}`));
        return;
      default:
        this.fail(new DeviceStepError(this.name, 'unexpected', `unexpected ${message.tag}`));
    }
  }

  private startHeartbeats(): void {
    this.heartbeats.start(
      (seq) => this.endpoint.post({ tag: 'heartbeat', seq, sentAtMs: Date.now() }),
      (silentMs, timeoutMs) => {
        this.fail(
          new DeviceLostError(this.name, `no answer for ${silentMs} ms (heartbeat deadline ${timeoutMs} ms)`),
        );
        void this.actor.terminate();
      },
    );
  }

  private fail(error: Error): void {
    if (this.failureError || this.isClosing) return;
    this.failureError = error;
    this.heartbeats.stop();
    this.rejectAll(error);
    for (const listener of this.failureListeners) listener(error);
    this.failureListeners.clear();
  }

  private rejectAll(error: Error): void {
    for (const pending of this.allPending) pending.rejectAll(error);
  }
}
