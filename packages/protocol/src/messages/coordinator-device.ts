/**
 * Coordinator <-> gpu-actor (device) messages. The coordinator configures a device once
 * (loadShard), then drives it one step at a time and moves KV blocks in and out.
 */

import { arrayOf, bool, type Check, count, finite, int, object, oneOf, range, str } from '../check.ts';
import type { KvCacheDType } from '../engine-config.ts';
import { parseParallelConfig } from '../parallel-layout.ts';
import type { DeviceSpan, SampledToken, StepBatch, StepKvSwap, StepKvTimings, StepResult } from '../step.ts';
import type { Tensor } from '../tensor.ts';
import type { Heartbeat, Hello, ProtocolError, Range, Refused, Shutdown, Welcome } from './common.ts';
import {
  type DeviceReshardPlanData,
  deviceReshardPlanData,
  type ShardPositionData,
  shardPosition,
} from './reshard-plan-data.ts';
import { type MessageRule, type MessageSchema, schema, stepId } from './schema.ts';

/** Which slice of which model this device holds, and the resources it may use. */
export interface LoadShard {
  tag: 'loadShard';
  /** Directory with config.json and *.safetensors, as seen from the device's host. */
  modelDir: string;
  /** Cluster parallel layout, 'D<dp>T<tp>P<pp>', e.g. 'D1T2P2'. */
  parallelism: string;
  /** Data-parallel replica index, in [0, dp). */
  dpRank: number;
  /** Tensor-parallel rank inside the replica, in [0, tp). */
  tpRank: number;
  /** Pipeline stage, in [0, pp). */
  ppStage: number;
  /** Decoder layers this stage owns, [start, end). */
  layers: Range;
  /** Compute threads the device may use. */
  numThreads: number;
  /** Memory budget for weights plus KV cache, bytes. */
  deviceMemoryBytes: number;
  /** Tokens per KV block. */
  blockSize: number;
  /** Element type of the device's KV cache (and the host tier's slots); absent: f32. */
  kvDtype?: KvCacheDType;
  /** Return Ready.weightDigest: sha256 hex over the held weights in canonical order. */
  isWeightDigestReturned?: boolean;
  /**
   * Seesaw: this device's position under its other layout, so that a host weight cache fills
   * that shard at load too (else the first switch into the layout reads it from the checkpoint).
   */
  otherLayoutPosition?: ShardPositionData;
}

/**
 * Switch to another parallel layout (re-shard). Sent only when every step sent to the device
 * has answered; the device answers reshardDone once its own kv-store puts are acknowledged and
 * its new weights, links and KV cache are in place.
 */
export interface Reshard {
  tag: 'reshard';
  /** Coordinator-chosen id echoed in reshardDone and carried by the weightSlice messages. */
  reshardId: number;
  /** Index of the layout to switch to (0 prefill, 1 decode); the device got both at spawn/load. */
  layout: number;
  /** This device's part of the ReshardPlan (planReshard of @seesaw/model), plain data. */
  plan: DeviceReshardPlanData;
  /** Return ReshardDone.weightDigest: sha256 hex over the held weights in canonical order. */
  isWeightDigestReturned?: boolean;
}

/** Run one engine step (see StepBatch: diffs against earlier steps). */
export interface Step {
  tag: 'step';
  /** The step's work. */
  batch: StepBatch;
}

/**
 * Right after hello: the coordinator's clock (epoch ms) as it sends; the device answers clockReply
 * at once with its own clock, and the coordinator estimates the device clock's offset from the
 * round trip (see the coordinator's device-clock.ts).
 */
export interface ClockProbe {
  tag: 'clockProbe';
  seq: number;
  sentAtMs: number;
}

/** Copy a sequence's KV blocks to the host kv-store (preemption by swapping). */
export interface SwapOut {
  tag: 'swapOut';
  /** Coordinator-chosen id echoed in swapDone. */
  swapId: number;
  /** Sequence whose blocks move. */
  seqId: number;
  /** Device KV block ids, in sequence order. */
  blockIds: number[];
  /** kv-store slot ids receiving them, one per block. */
  slotIds: number[];
}

/** Copy a sequence's KV blocks back from the kv-store into device blocks. */
export interface SwapIn {
  tag: 'swapIn';
  /** Coordinator-chosen id echoed in swapDone. */
  swapId: number;
  /** Sequence whose blocks move. */
  seqId: number;
  /** Device KV block ids to fill, in sequence order. */
  blockIds: number[];
  /** kv-store slot ids to read, one per block. */
  slotIds: number[];
}

export type CoordinatorToDevice =
  | Hello
  | LoadShard
  | Step
  | SwapOut
  | SwapIn
  | Reshard
  | ClockProbe
  | Heartbeat
  | Shutdown
  | ProtocolError;

/** The shard is loaded; sizes discovered at run time. */
export interface Ready {
  tag: 'ready';
  /** KV blocks that fit after weights. */
  numKvBlocks: number;
  /** Bytes of weights held. */
  weightBytes: number;
  /** Bytes of KV cache allocated. */
  kvCacheBytes: number;
  /** sha256 hex over the held weights in canonical order, when LoadShard asked for it. */
  weightDigest?: string;
  /** The device has a link to a host kv-store (it can report KV timings for every step). */
  hasKvStore?: boolean;
}

/** A reshard finished: the device now runs the new layout. Byte counts are raw checkpoint bytes. */
export interface ReshardDone {
  tag: 'reshardDone';
  /** Reshard.reshardId answered. */
  reshardId: number;
  /** KV blocks of the new KV cache. */
  numKvBlocks: number;
  /** Bytes of weights held now. */
  weightBytes: number;
  /** Bytes of the new KV cache. */
  kvCacheBytes: number;
  bytesKept: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
  /** Largest weights held at once during the switch. */
  peakWeightBytes: number;
  /** Wall time of the switch on this device. */
  ms: number;
  /** Start and end of the switch on the device's own clock (epoch ms, see DeviceSpan). */
  startMs?: number;
  endMs?: number;
  /** sha256 hex over the held weights in canonical order, when Reshard asked for it. */
  weightDigest?: string;
  // Where the switch's time went on this device, ms (gpu-actor ReshardPhaseMs):
  /** Cutting and posting sends. */
  sendMs?: number;
  /** Awaiting peers' pieces. */
  waitMs?: number;
  /** Copying pieces into the new matrices. */
  assembleMs?: number;
  /** The rest of the executor: freeing old units, re-encoding quantized blocks, yields. */
  otherMs?: number;
  /** Filling the host weight cache with the target layout's shard; present only when this switch did. */
  hostFillMs?: number;
  /** Building the new shard's device (forward pass, KV cache view). */
  createDeviceMs?: number;
  /** Weight-arena requests that did not fit and took fresh memory. */
  arenaFallbacks?: number;
}

/**
 * A step's result. Logits rows (when the batch asked for them) travel as tensors, one f32
 * [vocab] tensor per sampled entry in order; use stepDoneMessage / stepResultOf.
 */
export interface StepDone {
  tag: 'stepDone';
  /** StepBatch.stepId answered. */
  stepId: number;
  /** One entry per sampled StepSeq, in batch order. */
  sampled: SampledToken[];
  /** Whether one logits tensor per sampled entry is attached. */
  hasLogits: boolean;
  /** The answering device's KV transfer timings for this step (ms). */
  kvTimings?: StepKvTimings;
}

/** The device's clock (epoch ms) when it answered the ClockProbe `seq`. */
export interface ClockReply {
  tag: 'clockReply';
  seq: number;
  /** ClockProbe.sentAtMs, echoed. */
  sentAtMs: number;
  deviceMs: number;
}

/**
 * A device that does not answer the step (an earlier pipeline stage, a TP rank other than 0)
 * reports its own KV timings for it, when StepBatch.isKvReported asks: an earlier stage once its
 * write-backs are acknowledged.
 */
export interface StepKv {
  tag: 'stepKv';
  stepId: number;
  kvTimings: StepKvTimings;
}

/** A swapOut or swapIn finished. */
export interface SwapDone {
  tag: 'swapDone';
  /** SwapOut/SwapIn.swapId answered. */
  swapId: number;
  /** Sequence whose blocks moved. */
  seqId: number;
}

/** The device could not do what it was asked (application error, not a bad frame). */
export interface DeviceError {
  tag: 'error';
  /** Stable machine-readable code, e.g. 'outOfMemory', 'loadFailed', 'stepFailed'. */
  code: string;
  /** Detail for logs. */
  message: string;
  /** StepBatch.stepId that failed, when the error belongs to a step. */
  requestStepId?: number;
}

export type DeviceToCoordinator =
  | Welcome
  | Refused
  | Ready
  | StepDone
  | StepKv
  | ClockReply
  | SwapDone
  | ReshardDone
  | Heartbeat
  | DeviceError
  | ProtocolError;

/** Splits a StepResult into a stepDone message and its out-of-band logits tensors. */
export function stepDoneMessage(result: StepResult): { message: StepDone; tensors: Tensor[] } {
  const logits = result.logits ?? [];
  const message: StepDone = {
    tag: 'stepDone',
    stepId: result.stepId,
    sampled: result.sampled,
    hasLogits: logits.length > 0,
  };
  if (result.kvTimings) message.kvTimings = result.kvTimings;
  return {
    message,
    tensors: logits.map((row) => ({ dtype: 'f32', shape: [row.length], data: row })),
  };
}

/** Rebuilds a StepResult; logits rows are views on the received frame (no copy). */
export function stepResultOf(message: StepDone, tensors: readonly Tensor[]): StepResult {
  const result: StepResult = { stepId: message.stepId, sampled: message.sampled };
  if (message.hasLogits) result.logits = tensors.map((t) => t.data as Float32Array);
  if (message.kvTimings) result.kvTimings = message.kvTimings;
  return result;
}

const id = count;
const idList = arrayOf(count);
const tokenId = int(0, 0x7fff_ffff);

const sampling = object(
  {
    temperature: finite(0),
    topP: finite(Number.MIN_VALUE, 1),
    topK: int(-0x8000_0000, 0x7fff_ffff),
    seed: int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  },
  { presencePenalty: finite(-2, 2), frequencyPenalty: finite(-2, 2), numLogprobs: int(0, 20) },
);

/** A log probability: <= 0 (-Infinity for a token that cannot be drawn; NaN from NaN logits). */
const logprob: Check = (value, path) =>
  typeof value === 'number' && !(value > 0) ? undefined : `${path}: expected a log probability (<= 0)`;
export const sampledLogprobs = object({ logprob, top: arrayOf(object({ tokenId, logprob })) });
const sampledToken = object({ seqId: id, tokenId }, { logprobs: sampledLogprobs });

const stepSeq = object({
  seqId: id,
  tokenIds: arrayOf(tokenId),
  startPos: count,
  blockTable: idList,
  isSampled: bool,
  outputIndex: count,
});

const kvSwapFields = object({
  seqId: id,
  blockIds: idList,
  slotIds: idList,
  numTokens: int(1, Number.MAX_SAFE_INTEGER),
});

/** A StepKvSwap: its fields, then one block and one host slot per started block of tokens. */
const kvSwap: Check = (value, path) => {
  const error = kvSwapFields(value, path);
  if (error) return error;
  const swap = value as StepKvSwap;
  if (swap.blockIds.length !== swap.slotIds.length)
    return `${path}: ${swap.blockIds.length} blockIds but ${swap.slotIds.length} slotIds`;
  // Block size is the device's; it is at least 1 and at most numTokens, so the count lies in [1, numTokens].
  if (swap.blockIds.length < 1 || swap.blockIds.length > swap.numTokens)
    return `${path}: ${swap.blockIds.length} blocks cannot hold exactly ${swap.numTokens} tokens`;
  return undefined;
};

const stepBatch = object(
  {
    stepId,
    addedSeqs: arrayOf(
      object(
        { seqId: id, sampling },
        { outputHistory: object({ tokenIds: arrayOf(tokenId), nextPosition: count }) },
      ),
    ),
    releasedSeqIds: idList,
    seqs: arrayOf(stepSeq),
  },
  {
    isLogitsReturned: bool,
    swapOuts: arrayOf(kvSwap),
    swapIns: arrayOf(kvSwap),
    kvWriteBacks: arrayOf(kvSwap),
    prefetches: arrayOf(kvSwap),
    isKvReported: bool,
  },
);

const milliseconds = finite(0);
/** sha256, lower-case hex. */
const weightDigest = str(64, /^[0-9a-f]{64}$/);
const deviceSpanFields = object({
  name: oneOf('compute', 'prefetch', 'prefetch wait', 'write-back', 'write-back wait'),
  startMs: finite(0),
  endMs: finite(0),
});
const deviceSpan: Check = (value, path) =>
  deviceSpanFields(value, path) ??
  ((value as DeviceSpan).endMs >= (value as DeviceSpan).startMs
    ? undefined
    : `${path}: ends before it starts`);
const kvTimings = object(
  {
    computeMs: milliseconds,
    prefetchWaitMs: milliseconds,
    prefetchMs: milliseconds,
    writeBackMs: milliseconds,
    writeBackWaitMs: milliseconds,
  },
  {
    prefetchesNeeded: count,
    prefetchesLanded: count,
    prefetchBytesNeeded: count,
    prefetchBytesLanded: count,
    spans: arrayOf(deviceSpan),
  },
);

const swapFields = { swapId: id, seqId: id, blockIds: idList, slotIds: idList };

const swapTensors: MessageRule = (message, tensors) => {
  if (tensors.length) return 'expected no tensors';
  const m = message as unknown as SwapOut;
  return m.blockIds.length === m.slotIds.length ? undefined : 'blockIds and slotIds differ in length';
};

const logitsTensors: MessageRule = (message, tensors) => {
  const m = message as unknown as StepDone;
  const expected = m.hasLogits ? m.sampled.length : 0;
  if (tensors.length !== expected) return `expected ${expected} logits tensors, got ${tensors.length}`;
  const vocab = tensors[0]?.shape[0];
  for (const t of tensors) {
    if (t.dtype !== 'f32' || t.shape.length !== 1 || t.shape[0] !== vocab)
      return 'logits must be f32 [vocab], same vocab';
  }
  return undefined;
};

/** Ranks must lie inside the layout the parallelism string names. */
const loadShardRule: MessageRule = (message, tensors) => {
  if (tensors.length) return 'expected no tensors';
  const m = message as unknown as LoadShard;
  const { dp, tp, pp } = parseParallelConfig(m.parallelism);
  if (m.dpRank >= dp || m.tpRank >= tp || m.ppStage >= pp) {
    return `ranks D${m.dpRank}T${m.tpRank}P${m.ppStage} outside ${m.parallelism}`;
  }
  return undefined;
};

export const coordinatorToDeviceSchemas: Record<
  Exclude<CoordinatorToDevice['tag'], 'hello' | 'heartbeat' | 'shutdown' | 'protocolError'>,
  MessageSchema
> = {
  loadShard: schema(
    {
      modelDir: str(4096),
      parallelism: str(64, /^D[1-9]\d{0,5}T[1-9]\d{0,5}P[1-9]\d{0,5}$/),
      dpRank: count,
      tpRank: count,
      ppStage: count,
      layers: range,
      numThreads: int(1, 4096),
      deviceMemoryBytes: count,
      blockSize: int(1, 1 << 20),
    },
    loadShardRule,
    {
      isWeightDigestReturned: bool,
      kvDtype: oneOf('f32', 'bf16', 'f16'),
      otherLayoutPosition: shardPosition,
    },
  ),
  step: schema({ batch: stepBatch }),
  clockProbe: schema({ seq: count, sentAtMs: finite(0) }),
  swapOut: schema(swapFields, swapTensors),
  swapIn: schema(swapFields, swapTensors),
  reshard: schema({ reshardId: id, layout: int(0, 1), plan: deviceReshardPlanData }, undefined, {
    isWeightDigestReturned: bool,
  }),
};

export const deviceToCoordinatorSchemas: Record<
  Exclude<DeviceToCoordinator['tag'], 'welcome' | 'refused' | 'heartbeat' | 'protocolError'>,
  MessageSchema
> = {
  ready: schema({ numKvBlocks: count, weightBytes: count, kvCacheBytes: count }, undefined, {
    weightDigest,
    hasKvStore: bool,
  }),
  stepKv: schema({ stepId, kvTimings }),
  clockReply: schema({ seq: count, sentAtMs: finite(0), deviceMs: finite(0) }),
  stepDone: schema({ stepId, sampled: arrayOf(sampledToken), hasLogits: bool }, logitsTensors, { kvTimings }),
  swapDone: schema({ swapId: id, seqId: id }),
  reshardDone: schema(
    {
      reshardId: id,
      numKvBlocks: count,
      weightBytes: count,
      kvCacheBytes: count,
      bytesKept: count,
      bytesReceived: count,
      bytesSent: count,
      bytesFromHost: count,
      peakWeightBytes: count,
      ms: finite(0),
    },
    undefined,
    {
      weightDigest,
      sendMs: finite(0),
      waitMs: finite(0),
      assembleMs: finite(0),
      otherMs: finite(0),
      hostFillMs: finite(0),
      createDeviceMs: finite(0),
      arenaFallbacks: count,
      startMs: finite(0),
      endMs: finite(0),
    },
  ),
  error: schema({ code: str(128), message: str(4096) }, undefined, { requestStepId: stepId }),
};
