/**
 * Receiving end of the p2p link-rate probe (reshard-link-rates.ts), in its own thread as a peer device
 * is, decoding with the device <-> device link's accepted tags: every frame that arrives (its u8
 * tensor a view of the transferred buffer) is answered with a heartbeat, so the sender times
 * post -> arrival -> ack.
 */
import { INBOUND_TAGS, parentWorkerEndpoint } from '@seesaw/protocol';

const link = parentWorkerEndpoint({
  name: 'reshard link sink',
  accept: INBOUND_TAGS.deviceToDevice,
  log: () => {},
});
let seq = 0;
link.onMessage(() => link.post({ tag: 'heartbeat', seq: seq++, sentAtMs: 0 }));
