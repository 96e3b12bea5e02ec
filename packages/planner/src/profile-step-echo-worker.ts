// Worker of `seesaw profile`: a device worker with no kernels. It takes `step` messages through
// the real framed endpoint (codec and schema checks, as a device worker does), does the CPU
// device's per-step bookkeeping (the sampler's sequence table, the token-id check, the forward
// batch's block tables) and answers with a `stepDone` of token 0 for every sampled sequence, so
// the coordinator's round trip through it is a step's cost outside the kernels and the sampling
// (which the cost model charges per logit).

import { workerData } from 'node:worker_threads';
import { buildForwardBatch, checkStepTokenIds, StepSampler } from '@seesaw/gpu-actor';
import {
  type CoordinatorToDevice,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  parentWorkerEndpoint,
  stepDoneMessage,
} from '@seesaw/protocol';
import { BLOCK_SIZE } from './profile-step-messaging.ts';

const endpoint = parentWorkerEndpoint<DeviceToCoordinator, CoordinatorToDevice>({
  accept: INBOUND_TAGS.coordinatorToDevice,
  name: 'coordinator',
});
const { vocabSize, numKvBlocks } = workerData as { vocabSize: number; numKvBlocks: number };
const sampler = new StepSampler(vocabSize);
endpoint.onMessage((message) => {
  if (message.tag === 'shutdown') {
    endpoint.close('shutdown');
    return;
  }
  if (message.tag !== 'step') return;
  const { batch } = message;
  sampler.update(batch);
  checkStepTokenIds(batch, vocabSize);
  buildForwardBatch(batch.seqs, BLOCK_SIZE, numKvBlocks);
  const sampled = batch.seqs.filter((seq) => seq.isSampled).map((seq) => ({ seqId: seq.seqId, tokenId: 0 }));
  const { message: done, tensors } = stepDoneMessage({ stepId: batch.stepId, sampled });
  endpoint.post(done, tensors);
});
