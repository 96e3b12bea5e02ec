/**
 * One step on a device worker's loaded shard, with its KV transfers to and from the host's
 * kv-store. A non-first pipeline stage takes its input hidden state from the previous stage's
 * link, a non-last stage hands its output to the next stage's link (TP rank r to TP rank r: every
 * rank holds the whole all-reduced hidden state, so each link carries one copy and no rank fans
 * out), and only the last stage's TP rank 0 answers stepDone. A step's swaps move this rank's
 * layers x KV heads before its compute (KvStoreSwapper); tiered-KV write-backs go out layer by
 * layer during the compute and are acknowledged before the last stage answers, and prefetches
 * land in the background, awaited by the first later step that touches their sequence.
 */
import { type DeviceToCoordinator, type Endpoint, type StepBatch, stepDoneMessage } from '@seesaw/protocol';
import type { KvStoreSwapper } from './device-kv-store-swap.ts';
import type { LoadedShard } from './device-worker-shard.ts';
import { NO_PREFETCH_WAIT, type PrefetchWait, seqIdsTouchedBy } from './kv-prefetch-table.ts';

/** Where a step's outcome goes. */
export interface StepReplies {
  /** The coordinator's link (the last stage's stepDone). */
  coordinator: Pick<Endpoint<DeviceToCoordinator>, 'post'>;
  /** A failure found after runStep returned: an earlier stage's write-backs, which it does not await. */
  stepFailed(error: Error, stepId: number): void;
}

/** Runs `batch` on `shard`; throws (naming the step) on a failure the step itself waits for. */
export async function runStep(shard: LoadedShard, batch: StepBatch, replies: StepReplies): Promise<void> {
  const swapper = swapperFor(shard, batch);
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
  const prefetchWait: PrefetchWait = {
    waitedMs: beforeSwaps.waitedMs + beforeCompute.waitedMs + syncSwapInMs,
    numAwaited: beforeSwaps.numAwaited + beforeCompute.numAwaited,
    numLanded: beforeSwaps.numLanded + beforeCompute.numLanded,
    bytesAwaited: beforeSwaps.bytesAwaited + beforeCompute.bytesAwaited,
    bytesLanded: beforeSwaps.bytesLanded + beforeCompute.bytesLanded,
  };
  const input = shard.inbox ? await shard.inbox.take(batch.stepId) : undefined;
  // Shared KV: blocks an earlier step still has the store copying out must not be overwritten.
  await swapper?.waitForCopiesOut();
  const writeBacks = kvStep(batch, () => swapper?.startWriteBacks(batch));
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
    writeBacks?.finish().catch((error: unknown) => replies.stepFailed(kvFailure(batch, error), batch.stepId));
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
      prefetchesNeeded: prefetchWait.numAwaited,
      prefetchesLanded: prefetchWait.numLanded,
      prefetchBytesNeeded: prefetchWait.bytesAwaited,
      prefetchBytesLanded: prefetchWait.bytesLanded,
    };
  }
  const { message, tensors } = stepDoneMessage(output);
  replies.coordinator.post(message, tensors);
}

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
 * Runs the step's swaps through the kv-store before compute and returns the step without them
 * or the tiered-KV lists (CpuDevice's own swapper is for an in-process store only). Swap-outs
 * are gathered and posted synchronously inside apply(), so the prefetches issued right after
 * can never land in a swapped-out block before it has been copied.
 */
async function applySwaps(shard: LoadedShard, batch: StepBatch): Promise<StepBatch> {
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

/** A tiered-KV failure as a step error naming the step. */
function kvFailure(batch: StepBatch, error: unknown): Error {
  return new Error(
    `step ${batch.stepId}: tiered KV failed: ${error instanceof Error ? error.message : String(error)}`,
  );
}
