import { existsSync, statSync } from 'node:fs';
import { dequantize } from './ggml-dequantize.ts';
import { type GgmlTypeInfo, ggmlTypeById, isQuantized } from './ggml-types.ts';
import type { GgufTensorInfo } from './gguf-format.ts';
import { ggufModelConfig } from './gguf-llama-config.ts';
import { ggufRowOfHfRow, hfTensorName, permutedHeads } from './gguf-llama-tensors.ts';
import { GgufFile } from './gguf-reader.ts';
import type { ModelConfig } from './model-config.ts';
import { CheckpointError, type TensorDType, type TensorInfo } from './safetensors-format.ts';

/** Rows read from the file per pass when a range is converted. */
const READ_BLOCK_BYTES = 4 * 1024 * 1024;

/** A path names a GGUF model when it is a file ending in .gguf. */
export function isGgufPath(path: string): boolean {
  return path.toLowerCase().endsWith('.gguf') && existsSync(path) && statSync(path).isFile();
}

interface MappedTensor {
  info: TensorInfo;
  gguf: GgufTensorInfo;
  type: GgmlTypeInfo;
  /** Heads whose rows llama.cpp interleaved (q/k projections), else null. */
  heads: number | null;
}

/**
 * A llama GGUF file seen as a Hugging Face checkpoint: Hugging Face tensor names and [out][in]
 * shapes, q/k rows in Hugging Face order again, and quantized tensors decoded (exactly as ggml
 * dequantizes them) to F32 as they are read. 16-bit matrices stay 16-bit when every matrix of
 * the file has that one type; otherwise every matrix reads as F32 so fused projections share a
 * dtype. Byte ranges refer to these presented tensors.
 */
export class GgufTensors {
  readonly config: ModelConfig;
  private readonly tensors = new Map<string, MappedTensor>();

  private constructor(private readonly file: GgufFile) {
    this.config = ggufModelConfig(file.metadata, file.tensors, file.path);
    const matrixTypes = new Set<string>();
    for (const t of file.tensors.values()) {
      if (t.dims.length === 2) matrixTypes.add(ggmlTypeById(t.ggmlType, t.name).name);
    }
    const only = matrixTypes.size === 1 ? [...matrixTypes][0] : null;
    const matrixDtype: TensorDType = only === 'F16' || only === 'BF16' ? only : 'F32';
    for (const t of file.tensors.values()) {
      const name = hfTensorName(t.name);
      if (name === null) continue;
      const type = ggmlTypeById(t.ggmlType, `${file.path}: tensor "${t.name}"`);
      const dtype: TensorDType =
        t.dims.length === 2 ? matrixDtype : type.name === 'F16' || type.name === 'BF16' ? type.name : 'F32';
      if (t.dims.length === 1 && isQuantized(type)) {
        throw new CheckpointError(
          `${file.path}: 1-D tensor "${t.name}" is ${type.name}; expected a float type`,
        );
      }
      const shape = [...t.dims].reverse();
      const elements = shape.reduce((a, b) => a * b, 1);
      const heads = permutedHeads(name, this.config);
      this.tensors.set(name, {
        info: {
          name,
          dtype,
          shape,
          file: file.path,
          byteOffset: t.byteOffset,
          byteLength: elements * (dtype === 'F32' ? 4 : 2),
        },
        gguf: t,
        type,
        heads,
      });
    }
  }

  static open(path: string): GgufTensors {
    const file = GgufFile.open(path);
    try {
      return new GgufTensors(file);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  get path(): string {
    return this.file.path;
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.tensors.get(name)?.info;
  }

  /** The ggml type a presented tensor is stored as in the file. */
  storedType(name: string): GgmlTypeInfo | undefined {
    return this.tensors.get(name)?.type;
  }

  /** Bytes [byteStart, byteEnd) of the presented tensor into dest[0 ..). */
  readBytes(name: string, dest: Uint8Array, byteStart: number, byteEnd: number): void {
    const t = this.tensors.get(name)!;
    const { info, gguf, type } = t;
    const elementBytes = info.dtype === 'F32' ? 4 : 2;
    const cols = info.shape.length === 2 ? info.shape[1] : info.shape[0];
    const rowBytes = cols * elementBytes;
    const storedRowBytes = (gguf.dims[0] / type.blockSize) * type.typeSize;
    const passthrough =
      t.heads === null && (type.name === info.dtype || (type.name === 'F32' && info.dtype === 'F32'));
    if (passthrough) {
      this.file.readBytes(gguf.name, dest, byteStart, byteEnd);
      return;
    }
    const rows = info.byteLength / rowBytes;
    const headDim = t.heads === null ? 1 : rows / t.heads;
    // Whole heads per pass so a q/k permutation never leaves the rows read.
    const rowsPerPass = Math.max(headDim, Math.floor(READ_BLOCK_BYTES / storedRowBytes / headDim) * headDim);
    const firstRow = Math.floor(byteStart / rowBytes);
    const endRow = Math.ceil(byteEnd / rowBytes);
    const stored = new Uint8Array(Math.min(rowsPerPass, rows) * storedRowBytes);
    for (let pass = Math.floor(firstRow / rowsPerPass) * rowsPerPass; pass < endRow; pass += rowsPerPass) {
      const passEnd = Math.min(rows, pass + rowsPerPass);
      this.file.readBytes(gguf.name, stored, pass * storedRowBytes, passEnd * storedRowBytes);
      const values = this.decodeRows(type, stored.subarray(0, (passEnd - pass) * storedRowBytes), info.dtype);
      for (let r = Math.max(pass, firstRow); r < Math.min(passEnd, endRow); r++) {
        const from = (t.heads === null ? r : ggufRowOfHfRow(r, headDim)) - pass;
        const rowStart = Math.max(byteStart, r * rowBytes);
        const rowEnd = Math.min(byteEnd, (r + 1) * rowBytes);
        dest.set(
          values.subarray(from * rowBytes + rowStart - r * rowBytes, from * rowBytes + rowEnd - r * rowBytes),
          rowStart - byteStart,
        );
      }
    }
  }

  /** Stored rows as presented bytes: the 16-bit types kept as they are, everything else decoded to f32. */
  private decodeRows(type: GgmlTypeInfo, stored: Uint8Array, dtype: TensorDType): Uint8Array {
    if (type.name === dtype) return stored;
    const values = dequantize(type, stored);
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }

  close(): void {
    this.file.close();
  }
}
