/**
 * One step on a device worker's loaded shard, with its KV transfers to and from the host's
 * kv-store. A non-first pipeline stage takes its input hidden state from the previous stage's
 * link, a non-last stage hands its output to the next stage's link (TP rank r to TP rank r: every
 * rank holds the whole all-reduced hidden state, so each link carries one copy and no rank fans
 * out), and only the last stage's TP rank 0 answers stepDone; when the batch asks
 * (isKvReported) every other device sends its own KV timings in a stepKv. A step's swaps move this rank's
 * layers x KV heads before its compute (KvStoreSwapper); tiered-KV write-backs go out layer by
 * layer during the compute and are acknowledged before the last stage answers, and prefetches
 * land in the background, awaited by the first later step that touches their sequence.
 */
import {
  type DeviceSpan,
  type DeviceSpanName,
  type DeviceToCoordinator,
  type Endpoint,
  type StepBatch,
  type StepKvTimings,
  stepDoneMessage,
} from '@seesaw/protocol';
import { deviceTimeOf } from './device-clock.ts';
import type { KvStoreSwapper } from './device-kv-store-swap.ts';
import type { LoadedShard } from './device-worker-shard.ts';
import { NO_PREFETCH_WAIT, type PrefetchWait, seqIdsTouchedBy } from './kv-prefetch-table.ts';
import type { WriteBackTimings } from './step-kv-write-backs.ts';

/** Where a step's outcome goes. */
export interface StepReplies {
  /** The coordinator's link (the last stage's stepDone, every other device's stepKv). */
  coordinator: Pick<Endpoint<DeviceToCoordinator>, 'post'>;
  /** A failure found after runStep returned: an earlier stage's write-backs, which it does not await. */
  stepFailed(error: Error, stepId: number): void;
}

/** Runs `batch` on `shard`; throws (naming the step) on a failure the step itself waits for. */
export async function runStep(shard: LoadedShard, batch: StepBatch, replies: StepReplies): Promise<void> {
  const swapper = swapperFor(shard, batch);
  // A later stage's input, asked for now so its arrival time is known: before it arrives the
  // stage idles anyway, so only the prefetch wait after it stalls the pipeline.
  let inputArrivedMs: number | undefined;
  const input = shard.inbox?.take(batch.stepId).then((hidden) => {
    inputArrivedMs = performance.now();
    return hidden;
  });
  input?.catch(() => {}); // awaited below
  const waitStart = performance.now();
  // A swap-out must not copy blocks whose prefetched data is still arriving.
  const swapOutSeqIds = (batch.swapOuts ?? []).map((swap) => swap.seqId);
  const beforeSwaps = await waitForPrefetches(swapper, batch, swapOutSeqIds);
  // Claimed now, before applySwaps issues this step's own prefetches, which it must not wait for.
  const waiting = waitForPrefetches(swapper, batch, seqIdsTouchedBy(batch));
  waiting.catch(() => {}); // awaited below, after the swaps
  const swapStart = performance.now();
  const step = await applySwaps(shard, batch);
  // A swap done before compute is KV transfer time the step waits out in full: swap-ins count
  // as un-hidden swap-in time (both prefetch fields), swap-outs as write-back wait.
  const syncSwapMs = performance.now() - swapStart;
  const syncSwapInMs = batch.swapIns?.length ? syncSwapMs : 0;
  const syncSwapOutMs = batch.swapIns?.length ? 0 : batch.swapOuts?.length ? syncSwapMs : 0;
  const beforeCompute = await waiting;
  const waitEnd = performance.now();
  const waitedMs = beforeSwaps.waitedMs + beforeCompute.waitedMs + syncSwapInMs;
  // The wait ends at waitEnd; a later stage's stall starts no earlier than its input arrived.
  const stallMs = Math.min(waitedMs, waitEnd - Math.max(waitStart, inputArrivedMs ?? waitStart));
  const prefetchWait: PrefetchWait = {
    waitedMs: input ? Math.max(0, stallMs) : waitedMs,
    numAwaited: beforeSwaps.numAwaited + beforeCompute.numAwaited,
    numLanded: beforeSwaps.numLanded + beforeCompute.numLanded,
    bytesAwaited: beforeSwaps.bytesAwaited + beforeCompute.bytesAwaited,
    bytesLanded: beforeSwaps.bytesLanded + beforeCompute.bytesLanded,
  };
  const hidden = await input;
  // Shared KV: blocks an earlier step still has the store copying out must not be overwritten.
  await swapper?.waitForCopiesOut();
  const writeBacks = kvStep(batch, () => swapper?.startWriteBacks(batch));
  const computeStart = performance.now();
  const output = await shard.device.executeStage(step, hidden, writeBacks?.onLayerKvWritten);
  const compute = { startMs: computeStart, endMs: performance.now() };
  const report = (written: WriteBackTimings | undefined): StepKvTimings | undefined =>
    kvTimingsOf(batch, swapper, { compute, waitEnd, prefetchWait, syncSwapInMs, syncSwapOutMs, written });
  if ('hidden' in output) {
    const hiddenSize = shard.device.config.hiddenSize;
    const numTokens = output.hidden.length / hiddenSize;
    shard.links.next?.post(
      { tag: 'activations', stepId: batch.stepId, microBatch: 0, fromStage: shard.spec.ppStage, numTokens },
      [{ dtype: 'f32', shape: [numTokens, hiddenSize], data: output.hidden }],
    );
    // Only the last stage answers, so an earlier stage does not hold its next step for its
    // acknowledgements; a failure still reaches the coordinator, and flush() covers re-shards.
    // Its KV report (when asked for) goes once they are in.
    const finished = writeBacks ? writeBacks.finish() : Promise.resolve(undefined);
    finished.then(
      (written) => reportKv(replies, batch, report(written)),
      (error: unknown) => replies.stepFailed(kvFailure(batch, error), batch.stepId),
    );
    return;
  }
  // The answer means "the blocks may be freed and the host copy read": acknowledged puts only.
  const written = await writeBacks?.finish().catch((error: unknown) => {
    throw kvFailure(batch, error);
  });
  if (shard.spec.tpRank !== 0) {
    reportKv(replies, batch, report(written));
    return;
  }
  const kvTimings = report(written);
  if (kvTimings) output.kvTimings = kvTimings;
  const { message, tensors } = stepDoneMessage(output);
  replies.coordinator.post(message, tensors);
}

interface StepKvMeasures {
  compute: { startMs: number; endMs: number };
  waitEnd: number;
  prefetchWait: PrefetchWait;
  syncSwapInMs: number;
  syncSwapOutMs: number;
  written: WriteBackTimings | undefined;
}

/**
 * This device's KV timings for the step, with its spans on the device clock; undefined when the
 * step moved no KV here. Called once the write-backs are acknowledged, so the prefetches that
 * landed by then count for this step.
 */
function kvTimingsOf(
  batch: StepBatch,
  swapper: KvStoreSwapper | undefined,
  m: StepKvMeasures,
): StepKvTimings | undefined {
  const prefetches = swapper?.takeCompletedPrefetches() ?? [];
  const prefetchMs = prefetches.reduce((sum, p) => sum + p.landedMs - p.issuedMs, 0);
  const hasTieredKv =
    !!(batch.kvWriteBacks?.length || batch.prefetches?.length) ||
    m.syncSwapInMs + m.syncSwapOutMs > 0 ||
    m.prefetchWait.numAwaited > 0 ||
    prefetchMs > 0;
  if (!hasTieredKv) return undefined;
  const writeBackMs = (m.written?.writeBackMs ?? 0) + m.syncSwapOutMs;
  const writeBackWaitMs = (m.written?.writeBackWaitMs ?? 0) + m.syncSwapOutMs;
  const span = (name: DeviceSpanName, startMs: number, endMs: number): DeviceSpan => ({
    name,
    startMs: deviceTimeOf(startMs),
    endMs: deviceTimeOf(endMs),
  });
  const spans = [span('compute', m.compute.startMs, m.compute.endMs)];
  for (const p of prefetches) spans.push(span('prefetch', p.issuedMs, p.landedMs));
  const waited = m.prefetchWait.waitedMs;
  if (waited > 0) spans.push(span('prefetch wait', m.waitEnd - waited, m.waitEnd));
  // Write-backs run from their first put (during compute) to the last acknowledgement, now.
  const ackedMs = performance.now();
  if (writeBackMs > 0) spans.push(span('write-back', ackedMs - writeBackMs, ackedMs));
  if (writeBackWaitMs > 0) spans.push(span('write-back wait', ackedMs - writeBackWaitMs, ackedMs));
  return {
    computeMs: m.compute.endMs - m.compute.startMs,
    prefetchWaitMs: waited,
    prefetchMs: prefetchMs + m.syncSwapInMs,
    writeBackMs,
    writeBackWaitMs,
    prefetchesNeeded: m.prefetchWait.numAwaited,
    prefetchesLanded: m.prefetchWait.numLanded,
    prefetchBytesNeeded: m.prefetchWait.bytesAwaited,
    prefetchBytesLanded: m.prefetchWait.bytesLanded,
    spans,
  };
}

/** A non-answering device's KV report (StepBatch.isKvReported): zeros when it moved no KV. */
function reportKv(replies: StepReplies, batch: StepBatch, kvTimings: StepKvTimings | undefined): void {
  if (!batch.isKvReported) return;
  replies.coordinator.post({ tag: 'stepKv', stepId: batch.stepId, kvTimings: kvTimings ?? NO_KV_TIMINGS });
}

const NO_KV_TIMINGS: StepKvTimings = {
  computeMs: 0,
  prefetchWaitMs: 0,
  prefetchMs: 0,
  writeBackMs: 0,
  writeBackWaitMs: 0,
};

/** The kv-store swapper, or an error when the step moves KV and this device has no link to one. */
function swapperFor(shard: LoadedShard, batch: StepBatch): KvStoreSwapper | undefined {
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
async function waitForPrefetches(
  swapper: KvStoreSwapper | undefined,
  batch: StepBatch,
  seqIds: number[],
): Promise<PrefetchWait> {
  if (!swapper || seqIds.length === 0) return NO_PREFETCH_WAIT;
  try {
    return await swapper.waitForPrefetches(seqIds);
  } catch (error) {
    throw kvFailure(batch, error);
  }
}

/** Runs `start` (a synchronous kv-store call that may reject the step's lists), naming the step on failure. */
function kvStep<T>(batch: StepBatch, start: () => T): T {
  try {
    return start();
  } catch (error) {
    throw kvFailure(batch, error);
  }
}

/**
 * Runs the step's swaps through the kv-store before compute, then issues its prefetches
 * (KvStoreSwapper.applyThenPrefetch), and returns the step without them or the tiered-KV lists
 * (CpuDevice's own swapper is for an in-process store only).
 */
async function applySwaps(shard: LoadedShard, batch: StepBatch): Promise<StepBatch> {
  const {
    swapOuts: _outs,
    swapIns: _ins,
    kvWriteBacks: _writeBacks,
    prefetches: _prefetches,
    ...rest
  } = batch;
  try {
    await shard.swapper?.applyThenPrefetch(batch);
  } catch (error) {
    throw new Error(`step ${batch.stepId}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return rest;
}

/** A tiered-KV failure as a step error naming the step. */
function kvFailure(batch: StepBatch, error: unknown): Error {
  return new Error(
    `step ${batch.stepId}: tiered KV failed: ${error instanceof Error ? error.message : String(error)}`,
  );
}
