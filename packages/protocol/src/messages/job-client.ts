/**
 * Job client <-> coordinator messages (`seesaw run --cluster`): the client opens a job with its
 * EngineConfig (model directory as the hosts see it, layout, cache, scheduler), the coordinator lays it out on
 * its hosts and answers jobReady; the client then submits requests and gets each finished one
 * back as it ends (requestFinished), or requestRejected for one that can never run (the others go
 * on), or one jobFailed that ends the job. A request submitted with `reportProgress` also gets
 * requestProgress messages with its new tokens after each step (token streaming, stop strings
 * checked by the client), and the client may end such a request early with stopRequests. The client's hello uses
 * role 'coordinator' (it drives the job); the first message after welcome, openJob, says what
 * the link is.
 */

import {
  arrayOf,
  bool,
  type Check,
  count,
  finite,
  int,
  isPlainObject,
  object,
  oneOf,
  str,
} from '../check.ts';
import { type EngineConfig, engineConfigCheck, type KvCacheDType } from '../engine-config.ts';
import type { SampledLogprobs } from '../step.ts';
import type { Heartbeat, Hello, ProtocolError, Refused, Welcome } from './common.ts';
import { sampledLogprobs } from './coordinator-device.ts';
import { type MessageSchema, schema } from './schema.ts';

export interface OpenJob {
  tag: 'openJob';
  /**
   * The engine exactly as the client built it from its flags (model directory as the worker
   * hosts see it, layout, cache, scheduler); the coordinator runs the job with it unchanged.
   */
  config: EngineConfig;
}

/** Sampling settings of one request; mirrors the coordinator's SamplingParams. */
export interface JobSampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** null: the coordinator's engine picks a random seed. */
  seed: number | null;
  stopTokenIds: number[];
  ignoreEos: boolean;
  /** OpenAI's penalties in [-2, 2]; absent means 0. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Return log probabilities with this many alternatives (0..20); absent: none. */
  numLogprobs?: number;
}

export interface JobRequest {
  requestId: string;
  promptTokenIds: number[];
  sampling: JobSampling;
  /** Send requestProgress messages for this request; absent: only requestFinished. */
  reportProgress?: boolean;
}

/** Requests to queue on the job's engine (may be sent in several batches). */
export interface SubmitRequests {
  tag: 'submitRequests';
  requests: JobRequest[];
}

/**
 * Ends running requests at their next sampled token with finish reason 'stop' (the client saw
 * a stop string complete in their progress); ids not running are ignored.
 */
export interface StopRequests {
  tag: 'stopRequests';
  requestIds: string[];
}

export type JobClientToCoordinator =
  | Hello
  | OpenJob
  | SubmitRequests
  | StopRequests
  | Heartbeat
  | ProtocolError;

/** The job's devices are loaded; sizes for the client's log and its request checks. */
export interface JobReady {
  tag: 'jobReady';
  jobId: number;
  /** E.g. 'D2 on hosts a (1 device), b (1 device)'. */
  layout: string;
  weightBytes: number;
  kvCacheBytes: number;
  numKvBlocks: number;
  blockSize: number;
  /** Longest prompt + output any engine of the job accepts. */
  maxModelLen: number;
  /** The KV dtype the job's devices and host tiers hold (its kvDtype setting resolved: auto -> bf16...). */
  kvDtype?: KvCacheDType;
}

/** One finished request; mirrors the coordinator's RequestOutput. */
export interface JobRequestOutput {
  requestId: string;
  promptTokenIds: number[];
  outputTokenIds: number[];
  finishReason: 'stop' | 'length';
  /** One entry per output token, only for a request with numLogprobs. */
  outputLogprobs?: SampledLogprobs[];
  numPreemptions: number;
  arrivalMs: number;
  firstTokenMs: number;
  finishMs: number;
}

/** A request finished; `stats` are the job engine's counters right after it (name -> value). */
export interface RequestFinished {
  tag: 'requestFinished';
  output: JobRequestOutput;
  stats: Record<string, number>;
}

/**
 * Tokens a request with reportProgress sampled since its last progress message: its outputs are
 * now the first `offset` outputs reported before, then `tokenIds` (an offset below what was
 * reported means the request started over, e.g. on another replica after a lost host).
 */
export interface RequestProgress {
  tag: 'requestProgress';
  requestId: string;
  offset: number;
  tokenIds: number[];
}

/** One submitted request can never run (message names it and why); the job goes on. */
export interface RequestRejected {
  tag: 'requestRejected';
  requestId: string;
  message: string;
}

/** The job stopped early; no more requestFinished follow. */
export interface JobFailed {
  tag: 'jobFailed';
  message: string;
  /** Host whose loss ended the job, when that was the cause. */
  lostHost?: string;
}

export type CoordinatorToJobClient =
  | Welcome
  | Refused
  | JobReady
  | RequestFinished
  | RequestProgress
  | RequestRejected
  | JobFailed
  | Heartbeat
  | ProtocolError;

const tokenIds = arrayOf(count);
const nullableSeed: Check = (value, path) =>
  value === null || Number.isSafeInteger(value) ? undefined : `${path}: expected a safe integer or null`;

/** Counters: at most 64 names, each a finite number. */
const counters: Check = (value, path) => {
  if (!isPlainObject(value)) return `${path}: expected an object`;
  const entries = Object.entries(value);
  if (entries.length > 64) return `${path}: more than 64 counters`;
  for (const [key, v] of entries) {
    if (key.length > 64) return `${path}: counter name too long`;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `${path}.${key}: expected a finite number`;
  }
  return undefined;
};

const sampling = object(
  {
    maxTokens: int(1, Number.MAX_SAFE_INTEGER),
    temperature: finite(0),
    topP: finite(0, 1),
    topK: int(0, Number.MAX_SAFE_INTEGER),
    seed: nullableSeed,
    stopTokenIds: tokenIds,
    ignoreEos: bool,
  },
  { presencePenalty: finite(-2, 2), frequencyPenalty: finite(-2, 2), numLogprobs: int(0, 20) },
);

const request = object(
  { requestId: str(4096), promptTokenIds: tokenIds, sampling },
  { reportProgress: bool },
);

const output = object(
  {
    requestId: str(4096),
    promptTokenIds: tokenIds,
    outputTokenIds: tokenIds,
    finishReason: oneOf('stop', 'length'),
    numPreemptions: count,
    arrivalMs: finite(),
    firstTokenMs: finite(),
    finishMs: finite(),
  },
  { outputLogprobs: arrayOf(sampledLogprobs) },
);

export const jobClientToCoordinatorSchemas: Record<
  'openJob' | 'submitRequests' | 'stopRequests',
  MessageSchema
> = {
  openJob: schema({ config: engineConfigCheck }),
  submitRequests: schema({ requests: arrayOf(request, 1 << 20) }),
  stopRequests: schema({ requestIds: arrayOf(str(4096), 1 << 20) }),
};

export const coordinatorToJobClientSchemas: Record<
  'jobReady' | 'requestFinished' | 'requestProgress' | 'requestRejected' | 'jobFailed',
  MessageSchema
> = {
  jobReady: schema(
    {
      jobId: count,
      layout: str(4096),
      weightBytes: count,
      kvCacheBytes: count,
      numKvBlocks: count,
      blockSize: count,
      maxModelLen: count,
    },
    undefined,
    { kvDtype: oneOf('f32', 'bf16', 'f16') },
  ),
  requestFinished: schema({ output, stats: counters }),
  requestProgress: schema({ requestId: str(4096), offset: count, tokenIds }),
  requestRejected: schema({ requestId: str(4096), message: str(4096) }),
  jobFailed: schema({ message: str(4096) }, undefined, { lostHost: str(256) }),
};
