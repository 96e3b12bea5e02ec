/**
 * Coordinator <-> gpu-actor (device) messages. The coordinator configures a device once
 * (loadShard), then drives it one step at a time and moves KV blocks in and out.
 * The step, swap and re-shard families live in coordinator-device-step.ts, -swap.ts and
 * -reshard.ts; this file holds the load, clock and error messages, the unions of both
 * directions and their schemas, and re-exports the families' public names.
 */

import { arrayOf, bool, count, finite, int, oneOf, range, str } from '../check.ts';
import type { KvCacheDType } from '../engine-config.ts';
import { parseParallelConfig } from '../parallel-layout.ts';
import type { Heartbeat, Hello, ProtocolError, Range, Refused, Shutdown, Welcome } from './common.ts';
import type { Reshard, ReshardDone } from './coordinator-device-reshard.ts';
import {
  id,
  kvTimings,
  logitsTensors,
  type Step,
  type StepDone,
  type StepKv,
  sampledToken,
  stepBatch,
} from './coordinator-device-step.ts';
import {
  type SwapDone,
  type SwapIn,
  type SwapOut,
  swapFields,
  swapTensors,
} from './coordinator-device-swap.ts';
import { deviceReshardPlanData, type ShardPositionData, shardPosition } from './reshard-plan-data.ts';
import { type MessageRule, type MessageSchema, schema, stepId } from './schema.ts';

export type { Reshard, ReshardDone } from './coordinator-device-reshard.ts';
export {
  type Step,
  type StepDone,
  type StepKv,
  sampledLogprobs,
  stepDoneMessage,
  stepResultOf,
} from './coordinator-device-step.ts';
export type { SwapDone, SwapIn, SwapOut } from './coordinator-device-swap.ts';

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
 * Right after hello: the coordinator's clock (epoch ms) as it sends; the device answers clockReply
 * at once with its own clock, and the coordinator estimates the device clock's offset from the
 * round trip (see the coordinator's device-clock.ts).
 */
export interface ClockProbe {
  tag: 'clockProbe';
  seq: number;
  sentAtMs: number;
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
  /**
   * KV blocks this device's cache will have after a switch to LoadShard.otherLayoutPosition,
   * sized by the rule the switch sizes it by; absent where the device cannot say ahead.
   */
  otherLayoutNumKvBlocks?: number;
}

/** The device's clock (epoch ms) when it answered the ClockProbe `seq`. */
export interface ClockReply {
  tag: 'clockReply';
  seq: number;
  /** ClockProbe.sentAtMs, echoed. */
  sentAtMs: number;
  deviceMs: number;
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

/** sha256, lower-case hex. */
const weightDigest = str(64, /^[0-9a-f]{64}$/);

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
    otherLayoutNumKvBlocks: count,
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
