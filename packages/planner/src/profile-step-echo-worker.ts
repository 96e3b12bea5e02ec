// Worker of `seesaw profile`: a device worker with no model. It takes `step` messages through
// the real framed endpoint (codec and schema checks, as a device worker does) and answers each
// at once with a `stepDone` sampling token 0 for every sampled sequence, so the coordinator's
// round trip through it is the per-step messaging cost and nothing else.
import {
  type CoordinatorToDevice,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  parentWorkerEndpoint,
  stepDoneMessage,
} from '@seesaw/protocol';

const endpoint = parentWorkerEndpoint<DeviceToCoordinator, CoordinatorToDevice>({
  accept: INBOUND_TAGS.coordinatorToDevice,
  name: 'coordinator',
});
endpoint.onMessage((message) => {
  if (message.tag === 'shutdown') {
    endpoint.close('shutdown');
    return;
  }
  if (message.tag !== 'step') return;
  const { batch } = message;
  const sampled = batch.seqs.filter((seq) => seq.isSampled).map((seq) => ({ seqId: seq.seqId, tokenId: 0 }));
  const { message: done, tensors } = stepDoneMessage({ stepId: batch.stepId, sampled });
  endpoint.post(done, tensors);
});
