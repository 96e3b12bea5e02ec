import { closeSync, openSync, writeSync } from 'node:fs';
import { type GgmlTypeInfo, ggmlByteSize } from './ggml-types.ts';
import {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GgufScalar,
  type GgufValue,
  GgufValueType,
} from './gguf-format.ts';
import { CheckpointError } from './safetensors-format.ts';

export interface GgufTensorSpec {
  name: string;
  /** ggml dims, dims[0] varying fastest ([in, out] for a linear weight). */
  dims: number[];
  type: GgmlTypeInfo;
}

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): number {
    if (this.length + n > this.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(this.bytes.byteLength * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // reserve() may replace this.view: call it before reading this.view.
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }

  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }

  string(s: string): void {
    const encoded = this.encoder.encode(s);
    this.u64(encoded.byteLength);
    const at = this.reserve(encoded.byteLength);
    this.bytes.set(encoded, at);
  }

  scalar(type: GgufValueType, v: GgufScalar, what: string): void {
    const bad = () => new CheckpointError(`metadata ${what}: value ${String(v)} does not fit type ${type}`);
    if (type === GgufValueType.STRING) {
      if (typeof v !== 'string') throw bad();
      this.string(v);
      return;
    }
    if (type === GgufValueType.BOOL) {
      if (typeof v !== 'boolean') throw bad();
      const at = this.reserve(1);
      this.view.setUint8(at, v ? 1 : 0);
      return;
    }
    if (type === GgufValueType.UINT64 || type === GgufValueType.INT64) {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw bad();
      const at = this.reserve(8);
      if (type === GgufValueType.UINT64) this.view.setBigUint64(at, BigInt(v), true);
      else this.view.setBigInt64(at, BigInt(v), true);
      return;
    }
    if (typeof v !== 'number') throw bad();
    const setters: Partial<Record<GgufValueType, [number, (at: number) => void]>> = {
      [GgufValueType.UINT8]: [1, (at) => this.view.setUint8(at, v)],
      [GgufValueType.INT8]: [1, (at) => this.view.setInt8(at, v)],
      [GgufValueType.UINT16]: [2, (at) => this.view.setUint16(at, v, true)],
      [GgufValueType.INT16]: [2, (at) => this.view.setInt16(at, v, true)],
      [GgufValueType.UINT32]: [4, (at) => this.view.setUint32(at, v, true)],
      [GgufValueType.INT32]: [4, (at) => this.view.setInt32(at, v, true)],
      [GgufValueType.FLOAT32]: [4, (at) => this.view.setFloat32(at, v, true)],
      [GgufValueType.FLOAT64]: [8, (at) => this.view.setFloat64(at, v, true)],
    };
    const setter = setters[type];
    if (setter === undefined) throw bad();
    setter[1](this.reserve(setter[0]));
  }

  value(value: GgufValue, what: string): void {
    this.u32(value.type);
    this.valueBody(value, what);
  }

  private valueBody(value: GgufValue, what: string): void {
    if (value.type !== GgufValueType.ARRAY) {
      this.scalar(value.type, value.value, what);
      return;
    }
    this.u32(value.elementType);
    this.u64(value.value.length);
    for (const element of value.value) {
      if (value.elementType === GgufValueType.ARRAY) this.value(element as GgufValue, what);
      else this.scalar(value.elementType, element as GgufScalar, what);
    }
  }

  zeros(n: number): void {
    this.reserve(n);
  }

  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

/**
 * Streams a GGUF v3 file: header (metadata + tensor infos with offsets) up front, then each
 * tensor's bytes in order, in chunks of any size, each tensor padded to the alignment.
 */
export class GgufStreamWriter {
  private readonly fd: number;
  private readonly lengths: number[];
  private readonly offsets: number[];
  private readonly dataOffset: number;
  private tensorIndex = 0;
  private writtenInTensor = 0;

  constructor(
    readonly path: string,
    metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: readonly GgufTensorSpec[],
  ) {
    const alignmentEntry = metadata.get('general.alignment');
    const alignment = alignmentEntry === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(alignmentEntry.value);
    const sink = new ByteSink();
    sink.u32(GGUF_MAGIC);
    sink.u32(GGUF_VERSION);
    sink.u64(tensors.length);
    sink.u64(metadata.size);
    for (const [key, value] of metadata) {
      sink.string(key);
      sink.value(value, `"${key}"`);
    }
    this.lengths = [];
    this.offsets = [];
    let cursor = 0;
    const seen = new Set<string>();
    for (const t of tensors) {
      if (seen.has(t.name)) throw new CheckpointError(`${path}: duplicate tensor name "${t.name}"`);
      seen.add(t.name);
      const elements = t.dims.reduce((a, b) => a * b, 1);
      if (t.dims[0] % t.type.blockSize !== 0) {
        throw new CheckpointError(
          `${path}: tensor "${t.name}" row length ${t.dims[0]} is not a multiple of the ${t.type.name} block size ${t.type.blockSize}`,
        );
      }
      const length = ggmlByteSize(t.type, elements, `tensor "${t.name}"`);
      sink.string(t.name);
      sink.u32(t.dims.length);
      for (const d of t.dims) sink.u64(d);
      sink.u32(t.type.id);
      sink.u64(cursor);
      this.offsets.push(cursor);
      this.lengths.push(length);
      cursor = alignUp(cursor + length, alignment);
    }
    this.dataOffset = alignUp(sink.length, alignment);
    sink.zeros(this.dataOffset - sink.length);
    this.fd = openSync(path, 'w');
    this.writeAt(sink.contents(), 0);
    this.skipEmptyTensors();
    if (this.tensorIndex === tensors.length) this.finishFile(cursor);
    this.totalDataBytes = cursor;
  }

  private readonly totalDataBytes: number;

  get currentTensor(): string | null {
    return this.tensorIndex < this.tensors.length ? this.tensors[this.tensorIndex].name : null;
  }

  write(chunk: Uint8Array): void {
    const t = this.tensors[this.tensorIndex];
    if (t === undefined)
      throw new CheckpointError(`${this.path}: more data written than the header declares`);
    const remaining = this.lengths[this.tensorIndex] - this.writtenInTensor;
    if (chunk.byteLength > remaining) {
      throw new CheckpointError(
        `${this.path}: chunk of ${chunk.byteLength} bytes runs past tensor "${t.name}" (${remaining} left)`,
      );
    }
    this.writeAt(chunk, this.dataOffset + this.offsets[this.tensorIndex] + this.writtenInTensor);
    this.writtenInTensor += chunk.byteLength;
    if (this.writtenInTensor === this.lengths[this.tensorIndex]) {
      this.tensorIndex++;
      this.writtenInTensor = 0;
      this.skipEmptyTensors();
      if (this.tensorIndex === this.tensors.length) this.finishFile(this.totalDataBytes);
    }
  }

  abort(): void {
    closeSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
    if (this.tensorIndex < this.tensors.length) {
      throw new CheckpointError(
        `${this.path}: closed before tensor "${this.tensors[this.tensorIndex].name}" was fully written`,
      );
    }
  }

  /** Pads the last tensor so the file ends on the alignment, as ggml's writer does. */
  private finishFile(dataBytes: number): void {
    const end = this.dataOffset + dataBytes;
    const last = this.tensors.length - 1;
    const lastEnd = last < 0 ? this.dataOffset : this.dataOffset + this.offsets[last] + this.lengths[last];
    if (end > lastEnd) this.writeAt(new Uint8Array(end - lastEnd), lastEnd);
  }

  private writeAt(bytes: Uint8Array, position: number): void {
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(this.fd, bytes, done, bytes.byteLength - done, position + done);
    }
  }

  private skipEmptyTensors(): void {
    while (this.tensorIndex < this.tensors.length && this.lengths[this.tensorIndex] === 0) this.tensorIndex++;
  }
}

/** Writes a whole GGUF file from in-memory tensors. */
export function writeGguf(
  path: string,
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: ReadonlyArray<GgufTensorSpec & { data: Uint8Array }>,
): void {
  const writer = new GgufStreamWriter(path, metadata, tensors);
  try {
    for (const t of tensors) if (t.data.byteLength > 0) writer.write(t.data);
  } catch (error) {
    writer.abort();
    throw error;
  }
  writer.close();
}
