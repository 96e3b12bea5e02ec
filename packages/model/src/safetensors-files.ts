/**
 * The files of a safetensors checkpoint: opening one (its header parsed, its descriptor kept for
 * positional reads), reading byte ranges of it exactly, and the shard index that names which file
 * holds each tensor.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, parseHeader, parseHeaderLength, type TensorInfo } from './safetensors-format.ts';

export const INDEX_FILE = 'model.safetensors.index.json';

export interface OpenFile {
  fd: number;
  size: number;
}

/** Reads exactly dest.byteLength bytes at position (positional reads, looping over short reads). */
export function readExactly(fd: number, dest: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < dest.byteLength) {
    const n = readSync(fd, dest, done, dest.byteLength - done, position + done);
    if (n === 0) throw new CheckpointError(`${file}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

export function openSafetensors(path: string): { file: OpenFile; tensors: TensorInfo[] } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path);
    const headerLength = parseHeaderLength(prefix, size, path);
    const header = new Uint8Array(headerLength);
    readExactly(fd, header, 8, path);
    return { file: { fd, size }, tensors: parseHeader(header, size, path) };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Shard file names from model.safetensors.index.json (weight_map: tensor name -> file). */
export function readIndex(dir: string): Map<string, string> {
  const path = join(dir, INDEX_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CheckpointError(`${path}: cannot read index (${(error as Error).message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(`${path}: "weight_map" must be an object of tensor name -> shard file`);
  }
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new CheckpointError(
        `${path}: weight_map entry "${name}" has bad file name ${JSON.stringify(file)}`,
      );
    }
    map.set(name, file);
  }
  return map;
}
