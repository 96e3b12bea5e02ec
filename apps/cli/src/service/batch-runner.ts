/**
 * Runs the service's batches one after another on the one engine session the server holds.
 * Each input line goes through the same parser as `seesaw run` and each finished request
 * becomes the same output record; the record is committed to the state store as soon as the
 * request finishes. Starting a batch again (after a restart) skips every custom_id that
 * already has a record, so a batch interrupted by a killed server completes with each request
 * exactly once.
 */

import type { SeesawTokenizer } from '@seesaw/model';
import { errorRecord, formatRecordLine } from '../batch-output.ts';
import type { ChatPrompter } from '../chat-template.ts';
import { outputRecordOfChoices } from '../commands/output-record.ts';
import { type ParsedRequest, parseInputFile } from '../input-lines.ts';
import { submitChoices } from '../request-choices.ts';
import { stopWhenOfRequest } from '../stop-strings.ts';
import { type EngineChoice, readEngineChoice } from './engine-choice.ts';
import { LateRejectionError } from './engine-loop.ts';
import type { EngineProvider, ServiceEngine } from './engine-provider.ts';
import { type BatchRow, type StateStore, UNFINISHED_STATUSES } from './state-store.ts';

/** Requests of a batch in the engine at once by default: enough to fill a CPU engine's batch. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

export interface BatchRunnerOptions {
  store: StateStore;
  /** The engine batches run on; shared with single requests. */
  engines: EngineProvider;
  /** Whether a batch may ask for a Seesaw pair (local device workers, or a cluster with host KV tiers). */
  supportsSeesawPairs: boolean;
  tokenizer: SeesawTokenizer | null;
  /** Renders chat lines (the model's chat template); null when the model has none. */
  chat?: ChatPrompter | null;
  log: (line: string) => void;
  /**
   * Most requests of a batch in the engine at once. The rest wait here, so a cancel only has
   * to let this many finish (the engine cannot drop a running request).
   */
  maxInFlight?: number;
}

/** The queue gauges /metrics reports. */
export interface RunnerGauges {
  numQueuedBatches: number;
  numRunningBatches: number;
  numRequestsInFlight: number;
}

export class BatchRunner {
  private readonly queue: string[] = [];
  private readonly cancelRequested = new Set<string>();
  private runningBatchId: string | null = null;
  private numInFlight = 0;
  private isStopped = false;
  private wakeUp: (() => void) | null = null;
  private readonly loopDone: Promise<void>;

  constructor(private readonly options: BatchRunnerOptions) {
    // Batches a previous server left unfinished run first, in the order they were created.
    for (const batch of options.store.unfinishedBatches()) this.queue.push(batch.id);
    this.loopDone = this.loop();
  }

  /** Queues a batch created in the store (status validating). */
  enqueue(batchId: string): void {
    this.queue.push(batchId);
    this.wakeUp?.();
  }

  /** Asks a queued or running batch to stop; returns the batch as it now stands. */
  cancel(batchId: string): BatchRow {
    const { store } = this.options;
    const batch = store.mustGetBatch(batchId);
    if (!UNFINISHED_STATUSES.includes(batch.status) || batch.status === 'cancelling') return batch;
    this.cancelRequested.add(batchId);
    const cancelling = store.updateBatch(batchId, 'cancelling');
    this.wakeUp?.();
    return cancelling;
  }

  gauges(): RunnerGauges {
    return {
      numQueuedBatches: this.queue.length,
      numRunningBatches: this.runningBatchId === null ? 0 : 1,
      numRequestsInFlight: this.numInFlight,
    };
  }

  /** Stops after the running step; unfinished batches stay in the store for the next server. */
  async stop(): Promise<void> {
    this.isStopped = true;
    this.wakeUp?.();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    while (!this.isStopped) {
      const batchId = this.queue.shift();
      if (batchId === undefined) {
        await this.sleep();
        continue;
      }
      this.runningBatchId = batchId;
      try {
        await this.runBatch(batchId);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.options.log(`batch ${batchId} failed: ${message}`);
        if (!this.isStopped) {
          this.options.store.updateBatch(batchId, 'failed', { failure: { code: 'server_error', message } });
        }
      } finally {
        this.runningBatchId = null;
        this.numInFlight = 0;
      }
    }
  }

  private isCancelled(batchId: string): boolean {
    return (
      this.cancelRequested.has(batchId) || this.options.store.mustGetBatch(batchId).status === 'cancelling'
    );
  }

  private async runBatch(batchId: string): Promise<void> {
    const { store, tokenizer } = this.options;
    const batch = store.mustGetBatch(batchId);
    let choice: EngineChoice | null;
    try {
      choice = readEngineChoice(batch.metadata, this.options.supportsSeesawPairs);
    } catch (error) {
      // Checked when the batch was created; only a batch from a server with other options gets here.
      store.updateBatch(batchId, 'failed', {
        failure: { code: 'invalid_metadata', message: (error as Error).message },
      });
      return;
    }
    const engine = await this.options.engines.acquire(choice);
    const { session } = engine;
    const content = store.fileContent(batch.inputFileId);
    if (content === null) {
      store.updateBatch(batchId, 'failed', {
        failure: { code: 'invalid_file', message: `input file ${batch.inputFileId} no longer exists` },
      });
      return;
    }
    const lines = parseInputFile(content.toString('utf8'), {
      vocabSize: session.config.vocabSize,
      maxModelLen: session.config.maxPositionEmbeddings,
      tokenizer,
      chat: this.options.chat,
    });
    if (lines.length === 0) {
      store.updateBatch(batchId, 'failed', {
        failure: { code: 'empty_file', message: `input file ${batch.inputFileId} has no request lines` },
      });
      return;
    }
    const done = store.completedCustomIds(batchId);
    const toRun: ParsedRequest[] = [];
    for (const line of lines) {
      if (!line.isOk) {
        const { customId, code, message, lineNumber } = line.error;
        store.addResult(
          batchId,
          customId,
          lineNumber,
          true,
          formatRecordLine(errorRecord(customId, code, message)),
        );
      } else if (!done.has(line.request.customId)) {
        toRun.push(line.request);
      }
    }
    // A batch cancelled while queued goes straight to cancelled, its total still counted.
    const status = batch.status === 'validating' ? 'in_progress' : batch.status;
    store.updateBatch(batchId, status, { numTotal: lines.length });
    if (done.size > 0)
      this.options.log(`batch ${batchId}: ${done.size} requests already done, ${toRun.length} to run`);
    await this.runRequests(batchId, toRun, engine);
    if (this.isStopped) return;
    const numExpired = this.isCancelled(batchId) ? 0 : this.expireUnrun(batchId, toRun);
    this.finalize(batchId, numExpired > 0);
  }

  private async runRequests(
    batchId: string,
    requests: ParsedRequest[],
    { session, engineLoop }: ServiceEngine,
  ): Promise<void> {
    const { store, tokenizer } = this.options;
    const maxInFlight = this.options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    const eosIds = session.config.eosTokenIds;
    let next = 0;
    let numInFlight = 0;
    let failure: Error | null = null;
    const expiresAtMs = (store.mustGetBatch(batchId).times.expires_at ?? Number.POSITIVE_INFINITY) * 1000;
    while (!this.isStopped && failure === null) {
      // Past its window a batch submits nothing more; what is in the engine still finishes.
      const isStopping = this.isCancelled(batchId) || Date.now() >= expiresAtMs;
      while (!isStopping && next < requests.length && numInFlight < maxInFlight) {
        const request = requests[next++];
        // Ids in the engine are per batch: two batches may use the same custom_id.
        // One engine request per choice (n, lists of prompts): request-choices.ts.
        // Stop strings end generation early (the record's cut gives the same answer).
        const submission = submitChoices(
          request,
          `${batchId}/${request.customId}`,
          (choice) => engineLoop.submit(choice),
          { stopWhen: stopWhenOfRequest(request, this.options.tokenizer) },
        );
        if ('rejection' in submission) {
          const message = `line ${request.lineNumber}: ${submission.rejection}`;
          const record = errorRecord(request.customId, 'request_rejected', message);
          store.addResult(batchId, request.customId, request.lineNumber, true, formatRecordLine(record));
          continue;
        }
        numInFlight++;
        submission.outputs.then(
          (outputs) => {
            numInFlight--;
            const record = outputRecordOfChoices(outputs, request, tokenizer, session.modelName, eosIds);
            store.addResult(batchId, request.customId, request.lineNumber, false, formatRecordLine(record));
            this.wakeUp?.();
          },
          (error: Error) => {
            numInFlight--;
            if (error instanceof LateRejectionError) {
              const message = `line ${request.lineNumber}: ${error.message}`;
              const record = errorRecord(request.customId, 'request_rejected', message);
              store.addResult(batchId, request.customId, request.lineNumber, true, formatRecordLine(record));
            } else {
              failure = error;
            }
            this.wakeUp?.();
          },
        );
      }
      this.numInFlight = numInFlight;
      if (numInFlight === 0) break;
      await this.sleep(expiresAtMs);
    }
    if (failure !== null) throw failure;
  }

  /** Waits for a request to finish, a cancel, stop, or the time `untilMs` (when given). */
  private sleep(untilMs = Number.POSITIVE_INFINITY): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(untilMs)
        ? setTimeout(() => this.wakeUp?.(), Math.max(0, untilMs - Date.now()))
        : null;
      this.wakeUp = () => {
        this.wakeUp = null;
        if (timer !== null) clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Past its completion window: every request of the batch without a result gets a
   * `batch_expired` error record, as OpenAI writes them to the error file. Returns how many.
   */
  private expireUnrun(batchId: string, requests: ParsedRequest[]): number {
    const { store } = this.options;
    const finished = store.completedCustomIds(batchId);
    let numExpired = 0;
    for (const request of requests) {
      if (finished.has(request.customId)) continue;
      const message = `line ${request.lineNumber}: the batch's completion window ended before this request ran`;
      const record = errorRecord(request.customId, 'batch_expired', message);
      store.addResult(batchId, request.customId, request.lineNumber, true, formatRecordLine(record));
      numExpired++;
    }
    return numExpired;
  }

  /** Writes the output and error files and ends the batch completed, cancelled or expired. */
  private finalize(batchId: string, isExpired: boolean): void {
    const { store } = this.options;
    const isCancelled = this.isCancelled(batchId);
    const status = isCancelled ? 'cancelled' : isExpired ? 'expired' : 'completed';
    if (status === 'completed') store.updateBatch(batchId, 'finalizing');
    store.finishBatch(batchId, status);
    this.cancelRequested.delete(batchId);
    const counts = store.resultCounts(batchId);
    this.options.log(
      `batch ${batchId} ${status}: ${counts.numCompleted} completed, ${counts.numFailed} failed`,
    );
  }
}
