import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ggmlByteSize, ggmlTypeById } from './ggml-types.ts';
import {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GgufScalar,
  type GgufTensorInfo,
  type GgufValue,
  GgufValueType,
  scalarByteSize,
} from './gguf-format.ts';
import { CheckpointError } from './safetensors-format.ts';

/** Bounds that no real file reaches; past them the file is corrupt, and we say so before allocating. */
const MAX_STRING_BYTES = 64 * 1024 * 1024;
const MAX_ARRAY_ELEMENTS = 64 * 1024 * 1024;
const MAX_TENSORS = 1 << 20;
const MAX_KV = 1 << 20;
const MAX_DIMS = 4;
const CHUNK_BYTES = 1 << 20;

/** Sequential little-endian reads from a file, in chunks, with errors naming the file. */
class FileCursor {
  private buffer = new Uint8Array(0);
  private view = new DataView(this.buffer.buffer);
  private bufferStart = 0;
  position = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly file: string,
  ) {}

  /** Makes bytes [position, position + n) available in the buffer; returns their buffer offset. */
  private need(n: number, what: string): number {
    if (this.position + n > this.size) {
      throw new CheckpointError(
        `${this.file}: unexpected end of file reading ${what} at byte ${this.position} (file is ${this.size} bytes)`,
      );
    }
    const offset = this.position - this.bufferStart;
    if (offset >= 0 && offset + n <= this.buffer.byteLength) return offset;
    const length = Math.min(this.size - this.position, Math.max(n, CHUNK_BYTES));
    this.buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const got = readSync(this.fd, this.buffer, done, length - done, this.position + done);
      if (got === 0) throw new CheckpointError(`${this.file}: short read at byte ${this.position + done}`);
      done += got;
    }
    this.view = new DataView(this.buffer.buffer);
    this.bufferStart = this.position;
    return 0;
  }

  u8(what: string): number {
    const o = this.need(1, what);
    this.position += 1;
    return this.buffer[o];
  }

  u32(what: string): number {
    const o = this.need(4, what);
    this.position += 4;
    return this.view.getUint32(o, true);
  }

  /** A u64 that must fit a safe integer (counts, lengths, offsets). */
  u64(what: string): number {
    const o = this.need(8, what);
    this.position += 8;
    const value = this.view.getBigUint64(o, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new CheckpointError(`${this.file}: ${what} ${value} is absurd; not a GGUF file or corrupt`);
    }
    return Number(value);
  }

  string(what: string): string {
    const length = this.u64(`${what} length`);
    if (length > MAX_STRING_BYTES) throw new CheckpointError(`${this.file}: ${what} is ${length} bytes long`);
    const o = this.need(length, what);
    this.position += length;
    try {
      return this.decoder.decode(this.buffer.subarray(o, o + length));
    } catch {
      throw new CheckpointError(`${this.file}: ${what} is not valid UTF-8`);
    }
  }

  scalar(type: GgufValueType, what: string): GgufScalar {
    if (type === GgufValueType.STRING) return this.string(what);
    const size = scalarByteSize(type);
    if (size === null) throw new CheckpointError(`${this.file}: ${what} has unknown value type ${type}`);
    const o = this.need(size, what);
    this.position += size;
    const v = this.view;
    switch (type) {
      case GgufValueType.UINT8:
        return v.getUint8(o);
      case GgufValueType.INT8:
        return v.getInt8(o);
      case GgufValueType.BOOL:
        return v.getUint8(o) !== 0;
      case GgufValueType.UINT16:
        return v.getUint16(o, true);
      case GgufValueType.INT16:
        return v.getInt16(o, true);
      case GgufValueType.UINT32:
        return v.getUint32(o, true);
      case GgufValueType.INT32:
        return v.getInt32(o, true);
      case GgufValueType.FLOAT32:
        return v.getFloat32(o, true);
      case GgufValueType.FLOAT64:
        return v.getFloat64(o, true);
      case GgufValueType.UINT64: {
        const big = v.getBigUint64(o, true);
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      default: {
        const big = v.getBigInt64(o, true);
        return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(big)
          : big;
      }
    }
  }

  value(type: GgufValueType, what: string): GgufValue {
    if (type !== GgufValueType.ARRAY) {
      return { type, value: this.scalar(type, what) } as GgufValue;
    }
    const elementType = this.u32(`${what} array element type`) as GgufValueType;
    const count = this.u64(`${what} array length`);
    if (count > MAX_ARRAY_ELEMENTS) throw new CheckpointError(`${this.file}: ${what} has ${count} elements`);
    if (elementType === GgufValueType.ARRAY) {
      const nested: GgufValue[] = [];
      for (let i = 0; i < count; i++) {
        nested.push(this.value(this.u32(`${what}[${i}] type`) as GgufValueType, `${what}[${i}]`));
      }
      return { type, elementType, value: nested };
    }
    const values: GgufScalar[] = new Array(count);
    for (let i = 0; i < count; i++) values[i] = this.scalar(elementType, `${what}[${i}]`);
    return { type, elementType, value: values };
  }
}

/**
 * A GGUF v3 file opened for reading: metadata and tensor infos parsed up front (one sequential
 * pass over the header), tensor data read on demand by byte range.
 */
export class GgufFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly size: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    readonly alignment: number,
    readonly dataOffset: number,
  ) {}

  static open(path: string): GgufFile {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const cursor = new FileCursor(fd, size, path);
      const magic = cursor.u32('magic');
      if (magic !== GGUF_MAGIC) throw new CheckpointError(`${path}: not a GGUF file (bad magic)`);
      const version = cursor.u32('version');
      if (version !== GGUF_VERSION) {
        throw new CheckpointError(`${path}: GGUF version ${version} is not supported (only version 3)`);
      }
      const tensorCount = cursor.u64('tensor count');
      const kvCount = cursor.u64('metadata count');
      if (tensorCount > MAX_TENSORS || kvCount > MAX_KV) {
        throw new CheckpointError(`${path}: ${tensorCount} tensors / ${kvCount} metadata entries is absurd`);
      }
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < kvCount; i++) {
        const key = cursor.string(`metadata key ${i}`);
        if (metadata.has(key)) throw new CheckpointError(`${path}: metadata key "${key}" appears twice`);
        metadata.set(key, cursor.value(cursor.u32(`type of "${key}"`) as GgufValueType, `metadata "${key}"`));
      }
      const alignment = readAlignment(metadata, path);
      const infos: Array<Omit<GgufTensorInfo, 'byteOffset' | 'byteLength'>> = [];
      for (let i = 0; i < tensorCount; i++) {
        const name = cursor.string(`tensor ${i} name`);
        const nDims = cursor.u32(`tensor "${name}" dimension count`);
        if (nDims < 1 || nDims > MAX_DIMS) {
          throw new CheckpointError(`${path}: tensor "${name}" has ${nDims} dimensions (1..${MAX_DIMS})`);
        }
        const dims: number[] = [];
        for (let d = 0; d < nDims; d++) dims.push(cursor.u64(`tensor "${name}" dimension ${d}`));
        const ggmlType = cursor.u32(`tensor "${name}" type`);
        const relativeOffset = cursor.u64(`tensor "${name}" offset`);
        infos.push({ name, dims, ggmlType, relativeOffset });
      }
      const dataOffset = alignUp(cursor.position, alignment);
      const tensors = placeTensors(infos, dataOffset, size, alignment, path);
      return new GgufFile(path, fd, size, metadata, tensors, alignment, dataOffset);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  tensor(name: string): GgufTensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new CheckpointError(`${this.path}: missing tensor "${name}"`);
    return info;
  }

  /** Reads bytes [byteStart, byteEnd) of a tensor's data into dest[0 ..). */
  readBytes(name: string, dest: Uint8Array, byteStart = 0, byteEnd?: number): void {
    if (this.closed) throw new CheckpointError(`${this.path}: file is closed`);
    const info = this.tensor(name);
    const end = byteEnd ?? info.byteLength;
    if (
      !(byteStart >= 0 && byteStart <= end && end <= info.byteLength && dest.byteLength >= end - byteStart)
    ) {
      throw new CheckpointError(
        `"${name}": byte range [${byteStart}, ${end}) is outside [0, ${info.byteLength}) or dest is too small`,
      );
    }
    let done = 0;
    const length = end - byteStart;
    while (done < length) {
      const got = readSync(this.fd, dest, done, length - done, info.byteOffset + byteStart + done);
      if (got === 0) throw new CheckpointError(`${this.path}: short read in tensor "${name}"`);
      done += got;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

function readAlignment(metadata: Map<string, GgufValue>, path: string): number {
  const entry = metadata.get('general.alignment');
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const value = entry.value;
  if (
    entry.type !== GgufValueType.UINT32 ||
    typeof value !== 'number' ||
    value === 0 ||
    (value & (value - 1)) !== 0
  ) {
    throw new CheckpointError(`${path}: general.alignment must be a u32 power of two, got ${String(value)}`);
  }
  return value;
}

/** Absolute offsets and sizes; every tensor aligned, inside the file, no two overlapping. */
function placeTensors(
  infos: Array<Omit<GgufTensorInfo, 'byteOffset' | 'byteLength'>>,
  dataOffset: number,
  size: number,
  alignment: number,
  path: string,
): Map<string, GgufTensorInfo> {
  const tensors = new Map<string, GgufTensorInfo>();
  for (const info of infos) {
    const where = `${path}: tensor "${info.name}"`;
    if (tensors.has(info.name)) throw new CheckpointError(`${path}: tensor "${info.name}" appears twice`);
    const type = ggmlTypeById(info.ggmlType, where);
    if (info.dims[0] % type.blockSize !== 0) {
      throw new CheckpointError(
        `${where}: row length ${info.dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`,
      );
    }
    const elements = info.dims.reduce((a, b) => a * b, 1);
    const byteLength = ggmlByteSize(type, elements, where);
    if (info.relativeOffset % alignment !== 0) {
      throw new CheckpointError(
        `${where}: data offset ${info.relativeOffset} is not ${alignment}-byte aligned`,
      );
    }
    const byteOffset = dataOffset + info.relativeOffset;
    if (byteOffset + byteLength > size) {
      throw new CheckpointError(
        `${where}: data [${byteOffset}, ${byteOffset + byteLength}) runs past the end of the file (${size} bytes); file is truncated`,
      );
    }
    tensors.set(info.name, { ...info, byteOffset, byteLength });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].byteOffset < prev.byteOffset + prev.byteLength) {
      throw new CheckpointError(`${path}: tensors "${prev.name}" and "${sorted[i].name}" overlap`);
    }
  }
  return tensors;
}
