import {
  type CoordinatorToDevice,
  type DeviceToCoordinator,
  ENGINE_DEFAULTS,
  INBOUND_TAGS,
  type StepBatch,
  spawnWorkerEndpoint,
} from '@seesaw/protocol';
import { median } from './profile-inputs.ts';

/** Per-step messaging cost between the coordinator and a device worker, as `seesaw profile` measures it. */
export interface StepMessagingTimings {
  /** Median round trip of a decode step of one sequence, seconds. */
  oneSeqSeconds: number;
  /** Median round trip of a decode step of `batchSeqs` sequences, seconds. */
  batchSeconds: number;
  batchSeqs: number;
}

/** The engine's KV block size: a measured step carries the block tables a real one does. */
export const BLOCK_SIZE = ENGINE_DEFAULTS.blockSize;
const VOCAB_SIZE = 32000;
/** Context of every sequence in the measured steps: its block table travels with each step. */
const CONTEXT_TOKENS = 512;

/** Decode step `stepId` over sequences 0..numSeqs-1, announcing them when `isFirst`. */
function decodeStep(stepId: number, numSeqs: number, isFirst: boolean): StepBatch {
  const seqIds = Array.from({ length: numSeqs }, (_, i) => i);
  return {
    stepId,
    addedSeqs: isFirst
      ? seqIds.map((seqId) => ({ seqId, sampling: { temperature: 1, topP: 1, topK: 0, seed: seqId } }))
      : [],
    releasedSeqIds: [],
    seqs: seqIds.map((seqId) => ({
      seqId,
      tokenIds: [(stepId * 7 + seqId) % VOCAB_SIZE],
      startPos: CONTEXT_TOKENS - 1,
      blockTable: Array.from({ length: CONTEXT_TOKENS / BLOCK_SIZE }, (_, b) => seqId * 64 + b),
      isSampled: true,
      outputIndex: stepId,
    })),
  };
}

/**
 * The fixed cost a step pays outside the kernels and the sampling: a `step` message to a device
 * worker and its `stepDone` back, through the real framed endpoint (encode, schema check and
 * decode on both sides, a worker-thread hop each way), with the device's own per-step
 * bookkeeping in between (profile-step-echo-worker.ts). Steps go one at a time, as a decode loop
 * sends them. Not in it: the coordinator's scheduling of the step and its handling of the answer.
 */
export async function measureStepMessaging(quick: boolean): Promise<StepMessagingTimings> {
  const entry = new URL('./profile-step-echo-worker.ts', import.meta.url);
  const { worker, endpoint } = spawnWorkerEndpoint<CoordinatorToDevice, DeviceToCoordinator>(entry, {
    accept: INBOUND_TAGS.deviceToCoordinator,
    name: 'profile step echo',
    workerData: { vocabSize: VOCAB_SIZE, numKvBlocks: 64 * 64 },
  });
  const pending = new Map<number, () => void>();
  endpoint.onMessage((message) => {
    if (message.tag === 'stepDone') pending.get(message.stepId)?.();
  });
  let stepId = 0;
  const roundTrip = (numSeqs: number, isFirst: boolean): Promise<number> =>
    new Promise((resolve) => {
      const id = ++stepId;
      const start = performance.now();
      pending.set(id, () => {
        pending.delete(id);
        resolve((performance.now() - start) / 1000);
      });
      endpoint.post({ tag: 'step', batch: decodeStep(id, numSeqs, isFirst) });
    });
  const batchSeqs = 32;
  const reps = quick ? 20 : 200;
  const medianRoundTrip = async (numSeqs: number): Promise<number> => {
    await roundTrip(numSeqs, true);
    const times: number[] = [];
    // The first steps warm the codec and the worker's JIT; they are not a decode loop's cost.
    for (let i = 0; i < reps + 5; i++) {
      const seconds = await roundTrip(numSeqs, false);
      if (i >= 5) times.push(seconds);
    }
    return median(times);
  };
  try {
    const oneSeqSeconds = await medianRoundTrip(1);
    const batchSeconds = await medianRoundTrip(batchSeqs);
    return { oneSeqSeconds, batchSeconds, batchSeqs };
  } finally {
    endpoint.post({ tag: 'shutdown', mode: 'abort' });
    endpoint.close('profile done');
    await worker.terminate();
  }
}
