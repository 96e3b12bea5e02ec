/**
 * Generated checkpoints cached under `<repo>/.seesaw/models/<shape>-<dtype>-seed<seed>`, made
 * once and reused by `bench --shape` and the default job. Generation writes to a temporary
 * sibling directory that is renamed into place, so a cache directory is always complete.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCheckpoint, type ModelShapeName } from '@seesaw/model';

/** This file is apps/cli/src/model-cache.ts; the repo root is three levels up. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));

export type CheckpointDType = 'bf16' | 'f16' | 'f32';
export const CHECKPOINT_DTYPES: readonly CheckpointDType[] = ['bf16', 'f16', 'f32'];

export interface GeneratedModelSpec {
  shape: ModelShapeName;
  dtype: CheckpointDType;
  seed: number;
}

export function cachedModelDir(spec: GeneratedModelSpec, root: string = REPO_ROOT): string {
  return join(root, '.seesaw', 'models', `${spec.shape}-${spec.dtype}-seed${spec.seed}`);
}

/** Returns the cached checkpoint directory, generating it first when absent. */
export async function ensureCachedModel(
  spec: GeneratedModelSpec,
  log: (line: string) => void,
  root: string = REPO_ROOT,
): Promise<string> {
  const dir = cachedModelDir(spec, root);
  if (existsSync(dir)) return dir;
  mkdirSync(join(dir, '..'), { recursive: true });
  const tempDir = `${dir}.partial-${process.pid}`;
  rmSync(tempDir, { recursive: true, force: true });
  log(`generating the ${spec.shape} ${spec.dtype} checkpoint (seed ${spec.seed}) into ${dir} ...`);
  const startMs = performance.now();
  try {
    await generateCheckpoint({ shape: spec.shape, seed: spec.seed, dtype: spec.dtype, outDir: tempDir });
    if (existsSync(dir)) {
      // Another process finished the same checkpoint first; same args give the same bytes.
      rmSync(tempDir, { recursive: true, force: true });
    } else {
      renameSync(tempDir, dir);
    }
  } catch (error) {
    rmSync(tempDir, { recursive: true, force: true });
    throw error;
  }
  log(`generated in ${((performance.now() - startMs) / 1000).toFixed(1)} s`);
  return dir;
}
