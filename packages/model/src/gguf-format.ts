/**
 * The GGUF v3 container (ggml's docs/gguf.md): little-endian throughout.
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
 *   metadata KV: string key, u32 value type, value (arrays: u32 element type, u64 count, values)
 *   tensor infos: string name, u32 n_dims, u64 dims[n_dims] (dims[0] varies fastest), u32 ggml type,
 *                 u64 offset into the data section (a multiple of the alignment)
 *   padding to `general.alignment` (u32, default 32), then the data section.
 * Strings are a u64 byte length followed by UTF-8 bytes, no terminator.
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;

/** One metadata value with its wire type (kept so a file can be written back exactly). */
export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; elementType: GgufValueType; value: GgufScalar[] | GgufValue[] };

/** Constructors for metadata values, so writers say the wire type once. */
export const gguf = {
  u8: (value: number): GgufValue => ({ type: GgufValueType.UINT8, value }),
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  u64: (value: number): GgufValue => ({ type: GgufValueType.UINT64, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  array: (elementType: GgufValueType, value: GgufScalar[]): GgufValue => ({
    type: GgufValueType.ARRAY,
    elementType,
    value,
  }),
};

/** Fixed byte size of a scalar value type; strings and arrays have none. */
export function scalarByteSize(type: GgufValueType): number | null {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    default:
      return null;
  }
}

export interface GgufTensorInfo {
  name: string;
  /** ggml dims, dims[0] varying fastest: a [out][in] matrix is dims [in, out]. */
  dims: number[];
  /** ggml type id (see ggml-types.ts). */
  ggmlType: number;
  /** Offset of the data relative to the data section. */
  relativeOffset: number;
  /** Absolute byte offset in the file. */
  byteOffset: number;
  byteLength: number;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
