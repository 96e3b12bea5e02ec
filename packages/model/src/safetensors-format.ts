/**
 * The safetensors layout: 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end)}, __metadata__?}), then the data block.
 * data_offsets are relative to the start of the data block (byte 8 + N).
 */
export type TensorDType = 'F32' | 'F16' | 'BF16';

export const SUPPORTED_DTYPES: readonly TensorDType[] = ['F32', 'F16', 'BF16'];

export interface TensorInfo {
  name: string;
  dtype: TensorDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  byteOffset: number;
  byteLength: number;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Headers above this are not real checkpoints (real ones are well under 1 MiB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function isSupportedDtype(dtype: unknown): dtype is TensorDType {
  return typeof dtype === 'string' && (SUPPORTED_DTYPES as readonly string[]).includes(dtype);
}

/**
 * Reads the header length from the first 8 bytes and checks it against the file size.
 * Returns the header byte length.
 */
export function parseHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new CheckpointError(`${file}: file is ${fileSize} bytes, too short for a safetensors header`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length === 0n || length > BigInt(MAX_HEADER_BYTES) || length > BigInt(fileSize - 8)) {
    throw new CheckpointError(
      `${file}: header length ${length} is absurd (file is ${fileSize} bytes, limit ${MAX_HEADER_BYTES}); not a safetensors file or corrupt`,
    );
  }
  return Number(length);
}

/**
 * Parses and validates the JSON header: known dtypes, integer shapes, data_offsets that
 * match shape x dtype size, lie inside the data block and do not overlap.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): TensorInfo[] {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw new CheckpointError(`${file}: header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError(`${file}: header must be a JSON object`);
  }
  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  const tensors: Array<TensorInfo & { begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const where = `${file}: tensor "${name}"`;
    if (typeof entry !== 'object' || entry === null)
      throw new CheckpointError(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isSupportedDtype(dtype)) {
      throw new CheckpointError(
        `${where}: unknown dtype ${JSON.stringify(dtype)} (supported: F32, F16, BF16)`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new CheckpointError(
        `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new CheckpointError(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const expectedLength = numElements(shape) * (dtype === 'F32' ? 4 : 2);
    if (end < begin || end - begin !== expectedLength) {
      throw new CheckpointError(
        `${where}: data_offsets [${begin}, ${end}) hold ${end - begin} bytes but shape ${JSON.stringify(shape)} ${dtype} needs ${expectedLength}`,
      );
    }
    if (end > dataSize) {
      throw new CheckpointError(
        `${where}: data_offsets [${begin}, ${end}) run past the end of the data (${dataSize} bytes); file is truncated`,
      );
    }
    tensors.push({
      name,
      dtype,
      shape,
      file,
      byteOffset: dataStart + begin,
      byteLength: end - begin,
      begin,
      end,
    });
  }
  const byBegin = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byBegin.length; i++) {
    const prev = byBegin[i - 1];
    const cur = byBegin[i];
    if (cur.begin < prev.end && cur.byteLength > 0 && prev.byteLength > 0) {
      throw new CheckpointError(
        `${file}: tensors "${prev.name}" [${prev.begin}, ${prev.end}) and "${cur.name}" [${cur.begin}, ${cur.end}) overlap`,
      );
    }
  }
  return tensors.map(({ begin: _b, end: _e, ...info }) => info);
}

export interface HeaderTensorSpec {
  name: string;
  dtype: TensorDType;
  shape: number[];
}

/**
 * Builds the header bytes (JSON padded with spaces so the data block starts 8-byte aligned)
 * for tensors laid out back to back in the given order. Returns header bytes (without the
 * 8-byte length prefix) and each tensor's [begin, end) within the data block.
 */
export function buildHeader(
  tensors: readonly HeaderTensorSpec[],
  metadata: Record<string, string> = { format: 'pt' },
): { header: Uint8Array; offsets: Array<[number, number]> } {
  const json: Record<string, unknown> = { __metadata__: metadata };
  const offsets: Array<[number, number]> = [];
  const seen = new Set<string>();
  let cursor = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new CheckpointError(`duplicate tensor name "${t.name}"`);
    seen.add(t.name);
    const length = numElements(t.shape) * (t.dtype === 'F32' ? 4 : 2);
    offsets.push([cursor, cursor + length]);
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [cursor, cursor + length] };
    cursor += length;
  }
  const text = JSON.stringify(json);
  const raw = new TextEncoder().encode(text);
  const padded = Math.ceil((8 + raw.byteLength) / 8) * 8 - 8;
  const header = new Uint8Array(padded).fill(0x20);
  header.set(raw);
  return { header, offsets };
}
