/**
 * Receiving end of the p2p link-rate probe (reshard-link-rates.ts), in its own thread as a peer device
 * is, decoding with the device <-> device link's accepted tags: every piece that arrives (a view of
 * the prober's shared memory) is copied into memory this thread has touched before, as a device
 * assembling a peer piece does, and answered with a heartbeat, so the sender times post -> copy ->
 * answer.
 */
import { INBOUND_TAGS, parentWorkerEndpoint } from '@seesaw/protocol';

const link = parentWorkerEndpoint({
  name: 'reshard link sink',
  accept: INBOUND_TAGS.deviceToDevice,
  log: () => {},
});
let into = new Uint8Array(0);
let seq = 0;
link.onMessage((_message, tensors) => {
  const piece = tensors[0]?.data;
  if (piece instanceof Uint8Array) {
    // Grown (and so first touched) by the warm-up piece of each size, which is not timed.
    if (into.byteLength < piece.byteLength) into = new Uint8Array(piece.byteLength);
    into.set(piece);
  }
  link.post({ tag: 'heartbeat', seq: seq++, sentAtMs: 0 });
});
