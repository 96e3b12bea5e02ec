import { closeSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configBoundProblems } from './config-bounds.ts';
import { expectedTensors } from './expected-tensors.ts';
import { GgufTensors, isGgufPath } from './gguf-tensors.ts';
import { loadConfigJson, type ModelConfig } from './model-config.ts';
import { INDEX_FILE, type OpenFile, openSafetensors, readExactly, readIndex } from './safetensors-files.ts';
import { CheckpointError, type TensorInfo } from './safetensors-format.ts';

const SINGLE_FILE = 'model.safetensors';
/** readColumns reads whole rows in blocks of about this many bytes, then copies the slices. */
const COLUMN_READ_BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * A Hugging Face checkpoint directory: config.json + model.safetensors, or shards listed in
 * model.safetensors.index.json; or a llama GGUF file, seen through GgufTensors with Hugging Face
 * names and shapes. Parses only headers; tensor bytes are read on demand with positional reads,
 * so nothing ever holds a whole file.
 */
export class Checkpoint {
  private readonly files = new Map<string, OpenFile>();
  private readonly tensors = new Map<string, TensorInfo>();
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    /** Set when `dir` is a GGUF file: tensors come from it instead of safetensors files. */
    private readonly gguf: GgufTensors | null = null,
  ) {}

  static open(dir: string): Checkpoint {
    const absDir = resolve(dir);
    if (isGgufPath(absDir)) {
      const gguf = GgufTensors.open(absDir);
      return new Checkpoint(absDir, gguf.config, gguf);
    }
    const ckpt = new Checkpoint(absDir, loadConfigJson(absDir));
    try {
      ckpt.openTensorFiles();
      ckpt.checkConfigBounds();
    } catch (error) {
      ckpt.close();
      throw error;
    }
    return ckpt;
  }

  private openTensorFiles(): void {
    const indexPath = join(this.dir, INDEX_FILE);
    if (existsSync(indexPath)) {
      const weightMap = readIndex(this.dir);
      const shardNames = [...new Set(weightMap.values())];
      const missing = shardNames.filter((f) => !existsSync(join(this.dir, f)));
      if (missing.length > 0) {
        throw new CheckpointError(
          `${indexPath}: shard file(s) missing from ${this.dir}: ${missing.join(', ')}`,
        );
      }
      for (const shard of shardNames) this.addFile(join(this.dir, shard));
      for (const [name, shard] of weightMap) {
        const info = this.tensors.get(name);
        if (info === undefined || info.file !== join(this.dir, shard)) {
          throw new CheckpointError(
            `${indexPath}: weight_map says "${name}" is in ${shard}, but that shard has no such tensor`,
          );
        }
      }
      return;
    }
    const single = join(this.dir, SINGLE_FILE);
    if (!existsSync(single)) {
      throw new CheckpointError(`${this.dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} found`);
    }
    this.addFile(single);
  }

  private addFile(path: string): void {
    const { file, tensors } = openSafetensors(path);
    this.files.set(path, file);
    for (const t of tensors) {
      const previous = this.tensors.get(t.name);
      if (previous !== undefined) {
        throw new CheckpointError(`tensor "${t.name}" appears in both ${previous.file} and ${t.file}`);
      }
      this.tensors.set(t.name, t);
    }
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /** Every tensor name, in no particular order. */
  names(): string[] {
    return this.gguf !== null ? this.gguf.names() : [...this.tensors.keys()];
  }

  /** Bytes of every tensor in the checkpoint: what one device holding the whole model reads. */
  tensorBytes(): number {
    let total = 0;
    for (const name of this.names()) total += this.info(name).byteLength;
    return total;
  }

  /** tensorBytes() of the checkpoint in `dir`, opening and closing it. */
  static tensorBytesOf(dir: string): number {
    const checkpoint = Checkpoint.open(dir);
    try {
      return checkpoint.tensorBytes();
    } finally {
      checkpoint.close();
    }
  }

  private find(name: string): TensorInfo | undefined {
    return this.gguf !== null ? this.gguf.info(name) : this.tensors.get(name);
  }

  /**
   * The int8 block type a matrix is stored as in a GGUF file (Q8_0 / Q4_0: the types the int8
   * kernels multiply directly), else null. Reads present it dequantized to F32 either way.
   */
  storedBlockType(name: string): 'q8_0' | 'q4_0' | null {
    const type = this.gguf?.storedType(name)?.name;
    return type === 'Q8_0' ? 'q8_0' : type === 'Q4_0' ? 'q4_0' : null;
  }

  /** Whether a tensor is stored quantized in a GGUF file (any block type, Q4_K included), whatever reads present. */
  isStoredQuantized(name: string): boolean {
    const type = this.gguf?.storedType(name)?.name;
    return type !== undefined && type !== 'F32' && type !== 'F16' && type !== 'BF16';
  }

  info(name: string): TensorInfo {
    const info = this.find(name);
    if (info === undefined) throw new CheckpointError(`${this.dir}: missing tensor "${name}"`);
    return info;
  }

  /** Reads bytes [byteStart, byteEnd) of the tensor's data into dest[0 .. byteEnd-byteStart). */
  readBytes(name: string, dest: Uint8Array, byteStart = 0, byteEnd?: number): void {
    const info = this.info(name);
    const end = byteEnd ?? info.byteLength;
    if (
      !(
        Number.isInteger(byteStart) &&
        Number.isInteger(end) &&
        byteStart >= 0 &&
        byteStart <= end &&
        end <= info.byteLength
      )
    ) {
      throw new CheckpointError(
        `"${name}": byte range [${byteStart}, ${end}) is outside [0, ${info.byteLength})`,
      );
    }
    if (dest.byteLength < end - byteStart) {
      throw new CheckpointError(
        `"${name}": destination holds ${dest.byteLength} bytes, range needs ${end - byteStart}`,
      );
    }
    this.readRange(info, dest.subarray(0, end - byteStart), byteStart);
  }

  /** Bytes of a tensor from byteStart on, exactly filling dest (range already checked). */
  private readRange(info: TensorInfo, dest: Uint8Array, byteStart: number): void {
    if (this.closed) throw new CheckpointError(`${this.dir}: checkpoint is closed`);
    if (this.gguf !== null) this.gguf.readBytes(info.name, dest, byteStart, byteStart + dest.byteLength);
    else readExactly(this.fileOf(info), dest, info.byteOffset + byteStart, info.file);
  }

  /** Reads rows [rowStart, rowEnd) of a 2-D tensor (one contiguous byte range) into dest. */
  readRows(name: string, rowStart: number, rowEnd: number, dest: Uint8Array): void {
    const { rows, rowBytes } = this.matrixShape(name);
    if (
      !(
        Number.isInteger(rowStart) &&
        Number.isInteger(rowEnd) &&
        rowStart >= 0 &&
        rowStart <= rowEnd &&
        rowEnd <= rows
      )
    ) {
      throw new CheckpointError(`"${name}": rows [${rowStart}, ${rowEnd}) are outside [0, ${rows})`);
    }
    this.readBytes(name, dest, rowStart * rowBytes, rowEnd * rowBytes);
  }

  /** Reads columns [colStart, colEnd) of every row of a 2-D tensor into dest, packed as [rows][colEnd-colStart]. */
  readColumns(name: string, colStart: number, colEnd: number, dest: Uint8Array): void {
    const info = this.info(name);
    const { rows, cols, rowBytes } = this.matrixShape(name);
    if (
      !(
        Number.isInteger(colStart) &&
        Number.isInteger(colEnd) &&
        colStart >= 0 &&
        colStart <= colEnd &&
        colEnd <= cols
      )
    ) {
      throw new CheckpointError(`"${name}": columns [${colStart}, ${colEnd}) are outside [0, ${cols})`);
    }
    const elementBytes = rowBytes / Math.max(cols, 1);
    const sliceBytes = (colEnd - colStart) * elementBytes;
    if (dest.byteLength < rows * sliceBytes) {
      throw new CheckpointError(
        `"${name}": destination holds ${dest.byteLength} bytes, columns need ${rows * sliceBytes}`,
      );
    }
    if (sliceBytes === 0) return;
    const rowsPerBlock = Math.max(1, Math.floor(COLUMN_READ_BLOCK_BYTES / rowBytes));
    const block = new Uint8Array(Math.min(rows, rowsPerBlock) * rowBytes);
    for (let r0 = 0; r0 < rows; r0 += rowsPerBlock) {
      const r1 = Math.min(rows, r0 + rowsPerBlock);
      this.readRange(info, block.subarray(0, (r1 - r0) * rowBytes), r0 * rowBytes);
      for (let r = r0; r < r1; r++) {
        const from = (r - r0) * rowBytes + colStart * elementBytes;
        dest.set(block.subarray(from, from + sliceBytes), r * sliceBytes);
      }
    }
  }

  /** The config's dimensions against the tensors in the files, before anything is sized by them. */
  private checkConfigBounds(): void {
    const problems = configBoundProblems(this.config, this.tensors);
    if (problems.length > 0) {
      throw new CheckpointError(
        `${this.dir}: config.json does not match the checkpoint:\n  ${problems.join('\n  ')}`,
      );
    }
  }

  /** Throws one CheckpointError listing every missing tensor and every wrong shape/dtype. */
  validate(): void {
    const problems: string[] = [];
    // One dtype across the matrices (they are fused and multiplied together); vectors are widened.
    const dtypes = new Set<string>();
    for (const { name, shape } of expectedTensors(this.config)) {
      const info = this.find(name);
      if (info === undefined) {
        problems.push(`missing tensor "${name}" (expected shape ${JSON.stringify(shape)})`);
        continue;
      }
      if (shape.length === 2) dtypes.add(info.dtype);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        problems.push(
          `tensor "${name}" has shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(shape)}`,
        );
      }
    }
    if (dtypes.size > 1) {
      problems.push(
        `model matrices mix dtypes ${[...dtypes].sort().join(', ')}; expected one dtype throughout`,
      );
    }
    if (problems.length > 0) {
      throw new CheckpointError(
        `${this.dir}: checkpoint does not match config.json:\n  ${problems.join('\n  ')}`,
      );
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const { fd } of this.files.values()) closeSync(fd);
    this.files.clear();
    this.gguf?.close();
  }

  private fileOf(info: TensorInfo): number {
    const file = this.files.get(info.file);
    if (this.closed || file === undefined) throw new CheckpointError(`${this.dir}: checkpoint is closed`);
    return file.fd;
  }

  private matrixShape(name: string): { rows: number; cols: number; rowBytes: number } {
    const info = this.info(name);
    if (info.shape.length !== 2) {
      throw new CheckpointError(`"${name}": expected a 2-D tensor, shape is ${JSON.stringify(info.shape)}`);
    }
    const [rows, cols] = info.shape;
    return { rows, cols, rowBytes: cols * (info.dtype === 'F32' ? 4 : 2) };
  }
}
