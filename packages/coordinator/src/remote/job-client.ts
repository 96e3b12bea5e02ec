/**
 * The client side of a job on a coordinator daemon (`seesaw run --cluster`): opens the job,
 * then looks like an engine to the caller (addRequest, step, stats), so the local run path drives
 * it unchanged. Requests are checked here with the engine's own rules and sent in batches on the
 * next step(); step() resolves with the requests finished since the last call, or rejects with a
 * RemoteJobError when the job failed (e.g. a host was lost). A request the coordinator rejects
 * alone (e.g. a token outside the vocabulary) comes back from takeRejections(); the rest go on.
 *
 * A request's functions (stopWhen, onProgress) stay here: such a request is sent with
 * reportProgress, its requestProgress messages rebuild its outputs so far, onProgress gets them,
 * and once stopWhen holds the client sends stopRequests, so the coordinator's engine ends it at
 * its next token (a step or two after the local engine would: the caller's cut gives the same answer).
 */
import {
  type CoordinatorToJobClient,
  connectAndHello,
  connectWebSocket,
  INBOUND_TAGS,
  type JobClientToCoordinator,
  type JobReady,
  type JobRequest,
  type OpenJob,
  type WebSocketEndpoint,
} from '@seesaw/protocol';
import type { EngineStats } from '../engine.ts';
import { type EngineRequest, type RequestOutput, RequestRejectedError } from '../request.ts';
import { validateRequest } from '../request-validation.ts';

/** Requests per submitRequests message. */
const SUBMIT_BATCH = 4096;

export class RemoteJobError extends Error {
  override name = 'RemoteJobError';
  constructor(
    message: string,
    /** The host whose loss ended the job, when that was the cause. */
    readonly lostHost?: string,
  ) {
    super(message);
  }
}

export interface RemoteJobOptions {
  /** ws://HOST:PORT (wss:// with TLS) of the coordinator daemon. */
  url: string;
  token: string;
  /** CA (PEM) the coordinator's wss:// certificate must chain to; the system's CAs when absent. */
  tlsCa?: string | Buffer;
  job: Omit<OpenJob, 'tag'>;
  /** Client name in the coordinator's log. */
  name?: string;
  log?: (line: string) => void;
}

function zeroStats(): EngineStats {
  return {
    numSteps: 0,
    numScheduledTokens: 0,
    numPromptTokensComputed: 0,
    numRecomputedTokens: 0,
    numOutputTokens: 0,
    numPreemptions: 0,
    numFinishedRequests: 0,
    numSwapOuts: 0,
    numSwapIns: 0,
    swappedBytes: 0,
    kvMovedTokens: 0,
    kvMovedBytes: 0,
    busyMs: 0,
    idleMs: 0,
    numPrefillSteps: 0,
    prefillStepMs: 0,
    numPrefillStepTokens: 0,
    numDecodeSteps: 0,
    decodeStepMs: 0,
    numDecodeStepTokens: 0,
  };
}

/** A request the coordinator refused to run; `message` names it and says why. */
export interface RejectedRequest {
  requestId: string;
  message: string;
}

export class RemoteJobClient {
  private readonly unsent: JobRequest[] = [];
  /** Requests with stopWhen or onProgress: their hooks and outputs so far (from requestProgress). */
  private readonly watched = new Map<
    string,
    { request: EngineRequest; outputTokenIds: number[]; isStopSent: boolean }
  >();
  private readonly outstanding = new Set<string>();
  private readonly finished: RequestOutput[] = [];
  private readonly rejected: RejectedRequest[] = [];
  private latestStats = zeroStats();
  private failure: RemoteJobError | undefined;
  private waiter: (() => void) | undefined;

  private constructor(
    private readonly link: WebSocketEndpoint<JobClientToCoordinator, CoordinatorToJobClient>,
    /** Sizes and layout the coordinator reported once the devices were loaded. */
    readonly ready: JobReady,
  ) {
    link.onMessage((message) => this.receive(message));
    link.onClose((reason) => {
      this.failure ??= new RemoteJobError(`connection to the coordinator closed: ${reason}`);
      this.waiter?.();
    });
  }

  /** Connects, opens the job and waits until its devices are loaded. */
  static async open(options: RemoteJobOptions): Promise<RemoteJobClient> {
    const link = await connectWebSocket<JobClientToCoordinator, CoordinatorToJobClient>(options.url, {
      accept: INBOUND_TAGS.coordinatorToJobClient,
      log: options.log,
      tlsCa: options.tlsCa,
    });
    await connectAndHello(link, {
      role: 'coordinator',
      name: options.name ?? 'job client',
      token: options.token,
    });
    const answer = new Promise<JobReady>((resolve, reject) => {
      const offMessage = link.onMessage((message) => {
        if (message.tag === 'jobReady') resolve(message);
        else if (message.tag === 'jobFailed')
          reject(new RemoteJobError(`job failed: ${message.message}`, message.lostHost));
        else return;
        offMessage();
        offClose();
      });
      const offClose = link.onClose((reason) => {
        offMessage();
        reject(new RemoteJobError(`coordinator closed the job before it started: ${reason}`));
      });
    });
    link.post({ tag: 'openJob', ...options.job });
    try {
      return new RemoteJobClient(link, await answer);
    } catch (error) {
      link.close('job failed');
      throw error;
    }
  }

  get maxModelLen(): number {
    return this.ready.maxModelLen;
  }

  /** The job engine's counters as of the last finished request. */
  get stats(): EngineStats {
    return this.latestStats;
  }

  /** Checks and queues a request (sent on the next step); throws RequestRejectedError like Engine. */
  addRequest(request: EngineRequest): void {
    validateRequest(request, this.ready.maxModelLen, this.ready.maxModelLen);
    if (this.outstanding.has(request.requestId)) {
      throw new RequestRejectedError(
        `request ${JSON.stringify(request.requestId)} rejected: duplicate requestId`,
      );
    }
    this.outstanding.add(request.requestId);
    // The hooks are functions of this process: the coordinator reports progress instead.
    const { stopWhen, onProgress, ...sendable } = request;
    if (stopWhen === undefined && onProgress === undefined) {
      this.unsent.push(sendable);
      return;
    }
    this.watched.set(request.requestId, { request, outputTokenIds: [], isStopSent: false });
    this.unsent.push({ ...sendable, reportProgress: true });
  }

  hasUnfinishedRequests(): boolean {
    return this.outstanding.size > 0 || this.finished.length > 0 || this.rejected.length > 0;
  }

  /** The requests the coordinator rejected since the last call (each is no longer outstanding). */
  takeRejections(): RejectedRequest[] {
    return this.rejected.splice(0);
  }

  /**
   * Sends queued requests, then resolves with those finished since the last call; also resolves
   * (maybe with none) when a request was rejected, so the caller can take the rejections.
   */
  async step(): Promise<RequestOutput[]> {
    this.flush();
    while (
      this.finished.length === 0 &&
      this.rejected.length === 0 &&
      !this.failure &&
      this.outstanding.size > 0
    ) {
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = undefined;
    }
    if (this.finished.length > 0) return this.finished.splice(0);
    if (this.failure) throw this.failure;
    return [];
  }

  /** Leaves the job (the coordinator then stops its devices). */
  async close(): Promise<void> {
    this.link.close('job client done');
  }

  private flush(): void {
    while (this.unsent.length > 0 && !this.link.isClosed) {
      const requests = this.unsent.splice(0, SUBMIT_BATCH);
      this.link.post({ tag: 'submitRequests', requests });
    }
  }

  private receive(message: CoordinatorToJobClient): void {
    if (message.tag === 'requestProgress') {
      this.progress(message.requestId, message.offset, message.tokenIds);
      return;
    }
    if (message.tag === 'requestFinished') {
      this.watched.delete(message.output.requestId);
      if (!this.outstanding.delete(message.output.requestId)) return;
      this.finished.push(message.output);
      this.latestStats = { ...zeroStats(), ...message.stats } as EngineStats;
    } else if (message.tag === 'requestRejected') {
      this.watched.delete(message.requestId);
      if (!this.outstanding.delete(message.requestId)) return;
      this.rejected.push({ requestId: message.requestId, message: message.message });
    } else if (message.tag === 'jobFailed') {
      this.failure = new RemoteJobError(`job failed: ${message.message}`, message.lostHost);
    } else {
      return;
    }
    this.waiter?.();
  }

  /** A watched request's new tokens: its hooks run here, as a local engine would run them. */
  private progress(requestId: string, offset: number, tokenIds: number[]): void {
    const watched = this.watched.get(requestId);
    if (watched === undefined) return;
    const { request, outputTokenIds } = watched;
    if (offset < outputTokenIds.length) {
      // The request started over on the coordinator (which forgot the stop): check afresh.
      outputTokenIds.length = offset;
      watched.isStopSent = false;
    }
    for (const id of tokenIds) {
      outputTokenIds.push(id);
      request.onProgress?.(outputTokenIds);
      if (!watched.isStopSent && request.stopWhen?.(outputTokenIds)) {
        watched.isStopSent = true;
        if (!this.link.isClosed) this.link.post({ tag: 'stopRequests', requestIds: [requestId] });
      }
    }
  }
}
