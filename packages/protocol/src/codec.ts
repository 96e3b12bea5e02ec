/**
 * Frame layout (all integers little-endian):
 *
 *   [u32 H][H bytes msgpack header][zero pad to 8][tensor 0 bytes][pad to 8][tensor 1]...
 *
 * The header is {v, tag, ...fields, tensors: TensorDescriptor[]}. Inline tensors start at
 * offsets that are multiples of 8 from the frame start, so a decoder can hand out typed-array
 * views on the frame's own bytes. The frame ends exactly where the last tensor ends.
 * Tensors in a shared region have a descriptor but no bytes in the frame.
 */

import { Packr } from 'msgpackr';
import type { Message } from './messages/index.ts';
import {
  DTYPE_BYTES,
  elementCount,
  matchesDType,
  type Tensor,
  type TensorDescriptor,
  tensorBytes,
} from './tensor.ts';
import { type DecodeOptions, type DecodeResult, validateFrame } from './validate.ts';
import { alignUp, MAX_HEADER_BYTES, WIRE_FORMAT_VERSION } from './wire-format.ts';

export type { DecodeOptions, DecodeResult, FrameError } from './validate.ts';
export { MAX_HEADER_BYTES, TENSOR_ALIGNMENT, WIRE_FORMAT_VERSION } from './wire-format.ts';

export interface EncodeOptions {
  /**
   * Maps a SharedArrayBuffer both peers hold to its region id; tensors backed by a known
   * region travel as (region, byteOffset) descriptors without bytes. Others are inlined.
   */
  regionIdOf?: (buffer: SharedArrayBuffer) => number | undefined;
}

const packr = new Packr({ useRecords: false });

interface FramePlan {
  header: Uint8Array;
  /** Inline tensors and their frame offsets. */
  inline: Array<{ bytes: Uint8Array; offset: number }>;
  byteLength: number;
}

function planFrame(message: Message, tensors: readonly Tensor[], options: EncodeOptions): FramePlan {
  const descriptors: TensorDescriptor[] = [];
  const inline: FramePlan['inline'] = [];
  const pending: Uint8Array[] = [];
  for (const t of tensors) {
    // A sender bug fails here, at its source, rather than as a protocolError from the peer.
    if (!matchesDType(t.dtype, t.data) || elementCount(t.shape) !== t.data.length) {
      throw new TypeError(
        `encode: ${t.data.constructor.name}(${t.data.length}) does not hold ${t.dtype} [${t.shape}]`,
      );
    }
    const byteLength = t.data.length * DTYPE_BYTES[t.dtype];
    const buffer = t.data.buffer;
    const region =
      typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer
        ? options.regionIdOf?.(buffer)
        : undefined;
    if (region !== undefined) {
      descriptors.push({
        dtype: t.dtype,
        shape: [...t.shape],
        byteLength,
        region,
        byteOffset: t.data.byteOffset,
      });
    } else {
      descriptors.push({ dtype: t.dtype, shape: [...t.shape], byteLength });
      pending.push(tensorBytes(t));
    }
  }
  const fields: Record<string, unknown> = { v: WIRE_FORMAT_VERSION };
  for (const [key, value] of Object.entries(message)) if (value !== undefined) fields[key] = value;
  fields.tensors = descriptors;
  // pack() returns a view on the packer's scratch buffer: copy before the next pack.
  const header = packr.pack(fields).slice();
  if (header.byteLength > MAX_HEADER_BYTES)
    throw new RangeError(`encode: header ${header.byteLength} B > 1 MiB`);
  let end = 4 + header.byteLength;
  for (const bytes of pending) {
    const offset = alignUp(end);
    inline.push({ bytes, offset });
    end = offset + bytes.byteLength;
  }
  return { header, inline, byteLength: end };
}

function writePrefix(target: Uint8Array, header: Uint8Array): void {
  new DataView(target.buffer, target.byteOffset, 4).setUint32(0, header.byteLength, true);
  target.set(header, 4);
}

/**
 * One frame in a fresh ArrayBuffer of exactly the frame's length (so it can be transferred).
 * Copies each inline tensor once.
 */
export function encodeFrame(
  message: Message,
  tensors: readonly Tensor[] = [],
  options: EncodeOptions = {},
): Uint8Array {
  const plan = planFrame(message, tensors, options);
  const frame = new Uint8Array(plan.byteLength);
  writePrefix(frame, plan.header);
  for (const { bytes, offset } of plan.inline) frame.set(bytes, offset);
  return frame;
}

/**
 * The same frame as a list of buffers to write back to back (for sockets): the prefix,
 * then each tensor's own bytes (not copied) with small zero pads between them.
 */
export function encodeFrameParts(
  message: Message,
  tensors: readonly Tensor[] = [],
  options: EncodeOptions = {},
): Uint8Array[] {
  const plan = planFrame(message, tensors, options);
  const firstOffset = plan.inline[0]?.offset ?? 4 + plan.header.byteLength;
  const prefix = new Uint8Array(firstOffset);
  writePrefix(prefix, plan.header);
  const parts: Uint8Array[] = [prefix];
  let end = firstOffset;
  for (const { bytes, offset } of plan.inline) {
    if (offset > end) parts.push(new Uint8Array(offset - end));
    if (bytes.byteLength) parts.push(bytes);
    end = offset + bytes.byteLength;
  }
  return parts;
}

/**
 * Decodes and validates one frame. Never throws: a bad frame gives {ok: false, error}.
 * Tensors are views on `frame`'s bytes, except when the frame itself sits at an address
 * not 8-aligned (e.g. a slice of a socket buffer): then the frame is copied once.
 */
export function decodeFrame(frame: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  try {
    return validateFrame(frame, options);
  } catch (error) {
    // validateFrame is written not to throw; this is the last guard for a receiver.
    return { ok: false, error: { code: 'badHeader', message: `decode failed: ${String(error)}` } };
  }
}
