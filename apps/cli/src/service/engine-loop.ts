/**
 * Steps the server's one engine for everyone who submits to it: batch requests and single
 * /v1/completions requests share the engine's steps, so a single request is not held back
 * until a running batch ends. Each submission's promise settles when its request finishes.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { EngineRequest, RequestOutput } from '@seesaw/coordinator';
import { type SessionEngine, tryAddRequest } from '../engine-session.ts';

/** A request the engine refused after accepting it (a cluster job's coordinator rejects one alone). */
export class LateRejectionError extends Error {}

export type Submission = { rejection: string } | { output: Promise<RequestOutput> };

export class EngineLoop {
  private readonly pending = new Map<
    string,
    { resolve: (output: RequestOutput) => void; reject: (error: Error) => void }
  >();
  private stepping: Promise<void> | null = null;
  private isStopped = false;
  /** The error of a failed step; the engine is unusable after it. */
  failure: Error | null = null;

  constructor(private readonly engine: SessionEngine) {}

  get numInFlight(): number {
    return this.pending.size;
  }

  /** Queues a request; the engine's refusal comes back at once instead of a promise. */
  submit(request: EngineRequest): Submission {
    if (this.isStopped) return { rejection: 'the server is stopping' };
    if (this.failure !== null) return { rejection: `the engine failed: ${this.failure.message}` };
    if (this.pending.has(request.requestId))
      throw new Error(`request id '${request.requestId}' is already running`);
    const rejection = tryAddRequest(this.engine, request);
    if (rejection !== null) return { rejection };
    const output = new Promise<RequestOutput>((resolve, reject) => {
      this.pending.set(request.requestId, { resolve, reject });
    });
    // A failed step has already failed its waiters (who report it); the loop just ends.
    this.stepping ??= this.stepUntilIdle()
      .catch(() => {})
      .finally(() => {
        this.stepping = null;
      });
    return { output };
  }

  /** Resolves once every submitted request has settled. */
  async idle(): Promise<void> {
    while (this.stepping !== null) await this.stepping;
  }

  /** Ends stepping after the running step; requests still running never settle. */
  async stop(): Promise<void> {
    this.isStopped = true;
    await this.stepping;
  }

  private async stepUntilIdle(): Promise<void> {
    // Submissions made in the same tick join the first step.
    await yieldToEventLoop();
    while (!this.isStopped && this.engine.hasUnfinishedRequests()) {
      let outputs: RequestOutput[];
      try {
        outputs = await this.engine.step();
      } catch (error) {
        // A failed step loses every running request: fail them all rather than hang them.
        this.failure = error as Error;
        for (const waiter of this.pending.values()) waiter.reject(error as Error);
        this.pending.clear();
        throw error;
      }
      for (const output of outputs) {
        const waiter = this.pending.get(output.requestId);
        this.pending.delete(output.requestId);
        waiter?.resolve(output);
      }
      for (const { requestId, message } of this.engine.takeRejections?.() ?? []) {
        const waiter = this.pending.get(requestId);
        this.pending.delete(requestId);
        waiter?.reject(new LateRejectionError(message));
      }
      // Lets HTTP requests (polls, cancels, new submissions) in between steps of a synchronous device.
      await yieldToEventLoop();
    }
  }
}
