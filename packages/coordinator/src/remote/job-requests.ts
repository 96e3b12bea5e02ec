/**
 * The client's requests of one remote job: queued as the client submits them until the job's
 * loop admits them into its engine, tracked while they run (a duplicate id is rejected, a
 * stopRequests marks them to stop), and answered to the client as they progress, are rejected
 * or finish.
 */
import type { JobClientToCoordinator, JobRequest } from '@seesaw/protocol';
import type { EngineStats } from '../engine.ts';
import { type EngineRequest, RequestRejectedError } from '../request.ts';
import type { ClusterMetrics } from './cluster-metrics.ts';
import type { JobEngineCluster } from './job-engine.ts';
import { checkJobRequest } from './job-request-admission.ts';
import type { JobClientLink } from './remote-job-context.ts';

export class JobRequests {
  private readonly queued: JobRequest[] = [];
  /** Running requests the client asked to stop (stopRequests): their stopWhen says so. */
  private readonly stopAsked = new Set<string>();
  /** Ids of the requests admitted and not yet finished (a duplicate among them is rejected). */
  private readonly liveRequestIds = new Set<string>();

  constructor(
    private readonly client: JobClientLink,
    private readonly metrics: ClusterMetrics,
  ) {}

  /** Takes the client's stopRequests and submitRequests; true when it queued new requests. */
  receive(message: JobClientToCoordinator): boolean {
    if (message.tag === 'stopRequests') {
      for (const requestId of message.requestIds)
        if (this.liveRequestIds.has(requestId)) this.stopAsked.add(requestId);
      return false;
    }
    if (message.tag !== 'submitRequests') return false;
    this.metrics.add('requestsTotal', message.requests.length);
    this.queued.push(...message.requests);
    return true;
  }

  /** Admits every queued request into `engine` (or rejects it), in the order submitted. */
  admitQueued(engine: JobEngineCluster, vocabSize: number): void {
    while (this.queued.length) this.admit(engine, this.queued.shift()!, vocabSize);
  }

  /** Sends the client each finished request, with the job's counters after the step. */
  reportFinished(outputs: Awaited<ReturnType<JobEngineCluster['step']>>, stats: EngineStats): void {
    const { metrics } = this;
    for (const output of outputs) {
      this.liveRequestIds.delete(output.requestId);
      this.stopAsked.delete(output.requestId);
      metrics.add('requestsFinishedTotal');
      metrics.add('tokensGeneratedTotal', output.outputTokenIds.length);
      metrics.add('promptTokensTotal', output.promptTokenIds.length);
      this.client.post({ tag: 'requestFinished', output, stats: { ...stats } });
    }
  }

  /**
   * Queues one submitted request, or answers requestRejected for it alone when it can never run
   * (the other requests of its batch go on).
   */
  private admit(engine: JobEngineCluster, submitted: JobRequest, vocabSize: number): void {
    const request = this.engineRequestOf(submitted);
    try {
      checkJobRequest(request, vocabSize, this.liveRequestIds);
      engine.addRequest(request);
      this.liveRequestIds.add(request.requestId);
    } catch (error) {
      if (!(error instanceof RequestRejectedError)) throw error;
      this.metrics.add('requestsRejectedTotal');
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
}
