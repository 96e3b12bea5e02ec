/** Hand-built frames (valid framing, arbitrary header) for malformed-input tests. */

import { Packr } from 'msgpackr';
import { alignUp } from '../src/wire-format.ts';

const packr = new Packr({ useRecords: false });

/** A frame whose header is `header` verbatim, followed by `payload` at the first 8-aligned offset. */
export function rawFrame(header: unknown, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const packed = packr.pack(header);
  const start = payload.byteLength ? alignUp(4 + packed.byteLength) : 4 + packed.byteLength;
  const frame = new Uint8Array(start + payload.byteLength);
  new DataView(frame.buffer).setUint32(0, packed.byteLength, true);
  frame.set(packed, 4);
  frame.set(payload, start);
  return frame;
}
