import { closeSync, openSync, writeSync } from 'node:fs';
import {
  buildHeader,
  CheckpointError,
  type HeaderTensorSpec,
  numElements,
  type TensorDType,
} from './safetensors-format.ts';

/**
 * Streams one .safetensors file: the header is written up front from the tensor specs, then
 * each tensor's bytes arrive in order, in as many chunks as the caller likes, so a tensor
 * never has to exist in memory as a whole.
 */
export class SafetensorsStreamWriter {
  private readonly fd: number;
  private readonly lengths: number[];
  private tensorIndex = 0;
  private writtenInTensor = 0;
  private position: number;

  constructor(
    readonly path: string,
    readonly tensors: readonly HeaderTensorSpec[],
  ) {
    const { header, offsets } = buildHeader(tensors);
    this.lengths = offsets.map(([begin, end]) => end - begin);
    this.fd = openSync(path, 'w');
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
    writeSync(this.fd, prefix);
    writeSync(this.fd, header);
    this.position = 8 + header.byteLength;
    this.skipEmptyTensors();
  }

  /** Appends bytes of the current tensor; a chunk must not run past the tensor's end. */
  write(chunk: Uint8Array): void {
    if (this.tensorIndex >= this.tensors.length) {
      throw new CheckpointError(`${this.path}: more data written than the header declares`);
    }
    const remaining = this.lengths[this.tensorIndex] - this.writtenInTensor;
    if (chunk.byteLength > remaining) {
      throw new CheckpointError(
        `${this.path}: chunk of ${chunk.byteLength} bytes runs past tensor "${this.tensors[this.tensorIndex].name}" (${remaining} left)`,
      );
    }
    let done = 0;
    while (done < chunk.byteLength) {
      done += writeSync(this.fd, chunk, done, chunk.byteLength - done, this.position + done);
    }
    this.position += chunk.byteLength;
    this.writtenInTensor += chunk.byteLength;
    if (this.writtenInTensor === this.lengths[this.tensorIndex]) {
      this.tensorIndex++;
      this.writtenInTensor = 0;
      this.skipEmptyTensors();
    }
  }

  /** The tensor whose bytes are expected next, or null when all are written. */
  get currentTensor(): string | null {
    return this.tensorIndex < this.tensors.length ? this.tensors[this.tensorIndex].name : null;
  }

  /** Closes the file without checking completeness (after an error; the file is then invalid). */
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

  private skipEmptyTensors(): void {
    while (this.tensorIndex < this.tensors.length && this.lengths[this.tensorIndex] === 0) this.tensorIndex++;
  }
}

/** Writes a .safetensors file (header with __metadata__ {format:'pt'}, 8-byte aligned, tensors in given order). */
export function writeSafetensors(
  path: string,
  tensors: Array<{ name: string; dtype: TensorDType; shape: number[]; data: Uint8Array }>,
): void {
  for (const t of tensors) {
    const needed = numElements(t.shape) * (t.dtype === 'F32' ? 4 : 2);
    if (t.data.byteLength !== needed) {
      throw new CheckpointError(
        `${path}: tensor "${t.name}" data is ${t.data.byteLength} bytes, shape ${JSON.stringify(t.shape)} ${t.dtype} needs ${needed}`,
      );
    }
  }
  const writer = new SafetensorsStreamWriter(path, tensors);
  for (const t of tensors) if (t.data.byteLength > 0) writer.write(t.data);
  writer.close();
}
