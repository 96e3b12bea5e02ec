/**
 * Tensors as they cross the wire: a dtype, a shape and a typed-array view of the bytes.
 *
 * f16 and bf16 have no native typed array in Node 20, so both travel as Uint16Array bit
 * patterns; the dtype says how to read them.
 */

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u8';

export type TensorData = Float32Array | Uint16Array | Int32Array | Uint8Array;

export interface Tensor {
  dtype: DType;
  /** Row-major dimensions; the element count is their product (1 for shape []). */
  shape: number[];
  /** Exactly product(shape) elements. */
  data: TensorData;
}

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u8'];

/** Rank limit: protects the validator from absurd shapes and keeps products exact. */
export const MAX_TENSOR_RANK = 8;

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** Typed-array view of `length` elements at `byteOffset`; the offset must be element-aligned. */
export function viewTensorData(
  dtype: DType,
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): TensorData {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, byteOffset, length);
    case 'f16':
    case 'bf16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'i32':
      return new Int32Array(buffer, byteOffset, length);
    case 'u8':
      return new Uint8Array(buffer, byteOffset, length);
  }
}

/** Whether `data` is the typed-array class that carries `dtype`. */
export function matchesDType(dtype: DType, data: TensorData): boolean {
  switch (dtype) {
    case 'f32':
      return data instanceof Float32Array;
    case 'f16':
    case 'bf16':
      return data instanceof Uint16Array;
    case 'i32':
      return data instanceof Int32Array;
    case 'u8':
      return data instanceof Uint8Array;
  }
}

/** Builds a tensor, checking that the data length matches the shape. */
export function tensor(dtype: DType, shape: number[], data: TensorData): Tensor {
  if (!matchesDType(dtype, data))
    throw new TypeError(`tensor: ${data.constructor.name} cannot hold ${dtype}`);
  if (elementCount(shape) !== data.length) {
    throw new RangeError(
      `tensor: shape [${shape}] needs ${elementCount(shape)} elements, got ${data.length}`,
    );
  }
  return { dtype, shape, data };
}

/** Bytes of a tensor's data, viewed (not copied). */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * How a frame header describes one tensor. Inline tensors' bytes follow the header in the
 * frame; a tensor with `region` lives in a SharedArrayBuffer both peers already hold, at
 * `byteOffset` (element-aligned), and has no bytes in the frame.
 */
export interface TensorDescriptor {
  dtype: DType;
  shape: number[];
  /** product(shape) * DTYPE_BYTES[dtype]. */
  byteLength: number;
  /** Shared region id (worker_threads only). */
  region?: number;
  /** Offset inside the shared region. */
  byteOffset?: number;
}
