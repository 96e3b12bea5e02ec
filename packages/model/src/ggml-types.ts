import { CheckpointError } from './safetensors-format.ts';

/**
 * ggml tensor types this engine reads: ids as in ggml.h, block geometry as in ggml-common.h.
 * A row of `n` elements of a block type is n / blockSize blocks of typeSize bytes, so a tensor's
 * rows are contiguous byte ranges and can be sliced along rows freely, along columns only at
 * block boundaries.
 */
export type GgmlTypeName = 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface GgmlTypeInfo {
  name: GgmlTypeName;
  id: number;
  /** Elements per block (1 for plain floats). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** QK_K: elements of one k-quant super-block. */
export const QK_K = 256;

export const GGML_TYPES: readonly GgmlTypeInfo[] = [
  { name: 'F32', id: 0, blockSize: 1, typeSize: 4 },
  { name: 'F16', id: 1, blockSize: 1, typeSize: 2 },
  { name: 'Q4_0', id: 2, blockSize: 32, typeSize: 2 + 16 },
  { name: 'Q8_0', id: 8, blockSize: 32, typeSize: 2 + 32 },
  { name: 'Q4_K', id: 12, blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 },
  { name: 'Q5_K', id: 13, blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  { name: 'Q6_K', id: 14, blockSize: QK_K, typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  { name: 'BF16', id: 30, blockSize: 1, typeSize: 2 },
];

/** Names of ggml types we do not read, for error messages (ids from ggml.h). */
const UNSUPPORTED_NAMES: Record<number, string> = {
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
};

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(GGML_TYPES.map((t) => [t.name, t]));

/** The type with ggml id `id`; a CheckpointError naming `where` (the tensor) when we do not read it. */
export function ggmlTypeById(id: number, where: string): GgmlTypeInfo {
  const info = BY_ID.get(id);
  if (info !== undefined) return info;
  const name = UNSUPPORTED_NAMES[id] ?? `unknown type id ${id}`;
  throw new CheckpointError(
    `${where}: ggml type ${name} is not supported (supported: ${GGML_TYPES.map((t) => t.name).join(', ')})`,
  );
}

export function ggmlType(name: GgmlTypeName): GgmlTypeInfo {
  return BY_NAME.get(name)!;
}

export function isQuantized(type: GgmlTypeInfo): boolean {
  return type.blockSize > 1;
}

/** Bytes of `elements` consecutive elements (a whole number of blocks) of `type`. */
export function ggmlByteSize(type: GgmlTypeInfo, elements: number, where: string): number {
  if (elements % type.blockSize !== 0) {
    throw new CheckpointError(
      `${where}: ${elements} elements is not a whole number of ${type.name} blocks of ${type.blockSize}`,
    );
  }
  return (elements / type.blockSize) * type.typeSize;
}
