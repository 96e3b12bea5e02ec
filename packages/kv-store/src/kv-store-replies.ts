/**
 * The frames the kv-store actor answers with besides KV: errors and its capacity. Text a peer
 * caused is clipped, so a bad request cannot make its own answer arbitrarily large.
 */

import type { Message, ProtocolError } from '@seesaw/protocol';
import type { HostKvStore } from './host-kv-store.ts';

/** The kvError answering `request`; a requestId that is not a valid id is answered as 0. */
export function kvErrorFrame(request: { requestId: number }, reason: string): Message {
  const requestId = Number.isSafeInteger(request.requestId) && request.requestId >= 0 ? request.requestId : 0;
  return { tag: 'kvError', requestId, message: reason.slice(0, 4096) };
}

/** The protocolError that rejects a frame tagged `tag`. */
export function protocolErrorFrame(code: ProtocolError['code'], message: string, tag: string): Message {
  return {
    tag: 'protocolError',
    code,
    message: message.slice(0, 4096),
    rejectedTag: tag.slice(0, 256),
  };
}

/** The store's slot capacity: announced on a coordinator link, and the answer to capacityQuery. */
export function capacityFrame(store: HostKvStore, requestId: number): Message {
  return {
    tag: 'capacity',
    requestId,
    numSlots: store.numSlots,
    numFreeSlots: store.numFreeSlots,
    slotBytes: store.slotBytes,
  };
}
