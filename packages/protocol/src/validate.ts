/**
 * Frame validation: everything a receiver checks before it uses a frame. The order matters:
 * cheap length checks first (so an absurd header length costs nothing), then msgpack, then
 * the header's envelope, the tag's fields, the tensor descriptors against the frame's
 * actual length, and last the tag's cross-field/tensor rule.
 */

import { Unpackr } from 'msgpackr';
import { checkFields, int, isPlainObject } from './check.ts';
import type { ProtocolErrorCode } from './messages/common.ts';
import { MESSAGE_SCHEMAS, type Message } from './messages/index.ts';
import { RESERVED_FIELDS } from './messages/schema.ts';
import { msgpackClaimsFit } from './msgpack-prescan.ts';
import {
  DTYPE_BYTES,
  isDType,
  MAX_TENSOR_RANK,
  type Tensor,
  type TensorDescriptor,
  viewTensorData,
} from './tensor.ts';
import {
  alignUp,
  MAX_HEADER_BYTES,
  MAX_TENSORS_PER_FRAME,
  TENSOR_ALIGNMENT,
  WIRE_FORMAT_VERSION,
} from './wire-format.ts';

export interface DecodeOptions {
  /** Resolves a region id from a descriptor to the SharedArrayBuffer this side holds. */
  regionById?: (id: number) => SharedArrayBuffer | undefined;
  /** Tags this receiver accepts; others are rejected as 'unexpected'. Default: every known tag. */
  accept?: ReadonlySet<string>;
}

export interface FrameError {
  code: ProtocolErrorCode;
  message: string;
  /** The frame's tag when the header could be read. */
  tag?: string;
}

export type DecodeResult =
  | { ok: true; message: Message; tensors: Tensor[] }
  | { ok: false; error: FrameError };

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Largest dimension accepted; keeps products of up to 8 dims exact in a double. */
const MAX_DIM = 0x7fff_ffff;
const checkDim = int(0, MAX_DIM);

function fail(code: ProtocolErrorCode, message: string, tag?: string): DecodeResult {
  return { ok: false, error: tag === undefined ? { code, message } : { code, message, tag } };
}

function checkDescriptor(value: unknown, path: string): string | undefined {
  if (!isPlainObject(value)) return `${path}: expected an object`;
  const error = checkFields(value, path, {
    required: {
      dtype: (v, p) => (isDType(v) ? undefined : `${p}: unknown dtype`),
      shape: checkShape,
      byteLength: int(0, Number.MAX_SAFE_INTEGER),
    },
    optional: { region: int(0, 0xffff_ffff), byteOffset: int(0, Number.MAX_SAFE_INTEGER) },
  });
  if (error) return error;
  const d = value as unknown as TensorDescriptor;
  if ((d.region === undefined) !== (d.byteOffset === undefined))
    return `${path}: region and byteOffset go together`;
  let elements = 1;
  for (const dim of d.shape) elements *= dim;
  const expected = elements * DTYPE_BYTES[d.dtype];
  if (expected !== d.byteLength)
    return `${path}: byteLength ${d.byteLength} != product(shape) * ${DTYPE_BYTES[d.dtype]} = ${expected}`;
  return undefined;
}

function checkShape(value: unknown, path: string): string | undefined {
  if (!Array.isArray(value) || value.length > MAX_TENSOR_RANK)
    return `${path}: expected at most ${MAX_TENSOR_RANK} dims`;
  for (let i = 0; i < value.length; i++) {
    const error = checkDim(value[i], `${path}[${i}]`);
    if (error) return error;
  }
  return undefined;
}

export function validateFrame(frame: Uint8Array, options: DecodeOptions): DecodeResult {
  if (frame.byteLength < 4) return fail('truncated', `frame of ${frame.byteLength} B has no header length`);
  const headerLength = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, true);
  if (headerLength > MAX_HEADER_BYTES)
    return fail('headerTooLarge', `header length ${headerLength} > ${MAX_HEADER_BYTES}`);
  if (4 + headerLength > frame.byteLength) {
    return fail('truncated', `header needs ${4 + headerLength} B, frame has ${frame.byteLength}`);
  }
  const headerBytes = frame.subarray(4, 4 + headerLength);
  // Before unpacking: msgpackr pre-allocates whatever length an array prefix claims.
  const claimError = msgpackClaimsFit(headerBytes);
  if (claimError) return fail('badHeader', `header is not msgpack: ${claimError}`);
  let header: unknown;
  try {
    header = unpackr.unpack(headerBytes);
  } catch (error) {
    return fail('badHeader', `header is not msgpack: ${(error as Error).message}`);
  }
  if (!isPlainObject(header)) return fail('badHeader', 'header is not a map');
  if (header.v !== WIRE_FORMAT_VERSION) {
    const tag = typeof header.tag === 'string' ? header.tag.slice(0, 256) : undefined;
    return fail('wireFormat', `wire format ${String(header.v).slice(0, 32)} != ${WIRE_FORMAT_VERSION}`, tag);
  }
  const tag = header.tag;
  if (typeof tag !== 'string' || tag.length > 256) return fail('badHeader', 'header has no string tag');
  const schema = MESSAGE_SCHEMAS.get(tag);
  if (!schema) return fail('unknownTag', `unknown tag ${JSON.stringify(tag)}`, tag);
  if (options.accept && !options.accept.has(tag))
    return fail('unexpected', `tag ${tag} is not accepted on this link`, tag);

  const descriptors = header.tensors;
  if (!Array.isArray(descriptors) || descriptors.length > MAX_TENSORS_PER_FRAME) {
    return fail('badTensor', `tensors: expected an array of at most ${MAX_TENSORS_PER_FRAME}`, tag);
  }
  for (let i = 0; i < descriptors.length; i++) {
    const error = checkDescriptor(descriptors[i], `tensors[${i}]`);
    if (error) return fail('badTensor', error, tag);
  }
  const fieldError = checkFields(header, tag, schema.fields, RESERVED_FIELDS);
  if (fieldError) return fail('badField', fieldError, tag);

  // Where each inline tensor's bytes start; the frame must end exactly after the last one.
  const offsets: number[] = [];
  let end = 4 + headerLength;
  for (const d of descriptors as TensorDescriptor[]) {
    if (d.region !== undefined) {
      offsets.push(-1);
      continue;
    }
    const offset = alignUp(end);
    offsets.push(offset);
    end = offset + d.byteLength;
    if (end > frame.byteLength)
      return fail('truncated', `tensor bytes end at ${end}, frame has ${frame.byteLength}`, tag);
  }
  if (end !== frame.byteLength)
    return fail('badTensor', `frame has ${frame.byteLength - end} trailing bytes`, tag);

  const ruleError = schema.rule(header, descriptors as TensorDescriptor[]);
  if (ruleError) return fail('badTensor', `${tag}: ${ruleError}`, tag);

  const tensorsResult = viewTensors(frame, descriptors as TensorDescriptor[], offsets, options);
  if (typeof tensorsResult === 'string') return fail('badTensor', tensorsResult, tag);

  const message: Record<string, unknown> = {};
  for (const key of Object.keys(header)) if (key !== 'v' && key !== 'tensors') message[key] = header[key];
  return { ok: true, message: message as unknown as Message, tensors: tensorsResult };
}

function viewTensors(
  frame: Uint8Array,
  descriptors: TensorDescriptor[],
  offsets: number[],
  options: DecodeOptions,
): Tensor[] | string {
  // Offsets are 8-aligned relative to the frame; views need them aligned in the buffer too.
  let bytes = frame;
  if (
    frame.byteOffset % TENSOR_ALIGNMENT !== 0 &&
    descriptors.some((d) => d.region === undefined && d.dtype !== 'u8')
  ) {
    bytes = frame.slice();
  }
  const tensors: Tensor[] = [];
  for (let i = 0; i < descriptors.length; i++) {
    const d = descriptors[i]!;
    const size = DTYPE_BYTES[d.dtype];
    const length = d.byteLength / size;
    if (d.region === undefined) {
      tensors.push({
        dtype: d.dtype,
        shape: d.shape,
        data: viewTensorData(d.dtype, bytes.buffer, bytes.byteOffset + offsets[i]!, length),
      });
      continue;
    }
    const region = options.regionById?.(d.region);
    if (!region) return `tensors[${i}]: unknown shared region ${d.region}`;
    const byteOffset = d.byteOffset!;
    if (byteOffset % size !== 0) return `tensors[${i}]: region offset ${byteOffset} not ${size}-aligned`;
    if (byteOffset + d.byteLength > region.byteLength) {
      return `tensors[${i}]: [${byteOffset}, ${byteOffset + d.byteLength}) outside region ${d.region} of ${region.byteLength} B`;
    }
    tensors.push({
      dtype: d.dtype,
      shape: d.shape,
      data: viewTensorData(d.dtype, region, byteOffset, length),
    });
  }
  return tensors;
}
