/**
 * The flags of the host-memory KV tier: --host-kv-memory SIZE gives preemption a place to swap
 * sequences to instead of recomputing them; --preemption picks the policy (auto: swap when the
 * cost model says moving the KV out and back is cheaper than recomputing it). With --devices the
 * tier is one kv-store worker for the host, split evenly over the cluster's engines; with
 * --cluster every host of the job runs one kv-store of SIZE bytes.
 *
 * --kv-dtype picks the KV cache's element type, the same on the devices and in the host tier (KV
 * moves between them as it is, never converted): 16-bit KV halves the bytes of every block and
 * slot, so the same memory holds twice the sequences.
 */
import type { PreemptionMode } from '@seesaw/coordinator';
import { KV_DTYPE_SETTINGS, type KvDTypeSetting } from '@seesaw/protocol';
import { type FlagValues, optionalByteSize, optionalString, UsageError } from './args.ts';
import type { DeviceBackend } from './backend-flags.ts';

const PREEMPTION_MODES: readonly PreemptionMode[] = ['auto', 'swap', 'recompute'];

/** --kv-dtype, or undefined (the engine default) when absent. */
export function readKvDtype(values: FlagValues): KvDTypeSetting | undefined {
  const text = optionalString(values, 'kv-dtype');
  if (text !== undefined && !KV_DTYPE_SETTINGS.includes(text as KvDTypeSetting)) {
    throw new UsageError(`--kv-dtype must be one of ${KV_DTYPE_SETTINGS.join(', ')}, got '${text}'`);
  }
  return text as KvDTypeSetting | undefined;
}

/**
 * The KV dtype a run on `backend` gets: the WebGPU device keeps its KV cache in f32 (its WGSL
 * attention reads f32 only), so auto means f32 there and a 16-bit dtype is refused.
 */
export function kvDtypeForBackend(
  kvDtype: KvDTypeSetting | undefined,
  backend: DeviceBackend,
): KvDTypeSetting | undefined {
  if (backend !== 'webgpu' || kvDtype === undefined || kvDtype === 'f32') return kvDtype;
  if (kvDtype === 'auto') return 'f32';
  throw new UsageError(
    `--kv-dtype ${kvDtype} needs --backend cpu: the WebGPU device keeps its KV cache in f32 (auto means f32 there)`,
  );
}

export function readHostKvSettings(values: FlagValues): {
  hostKvBytes?: number;
  preemptionMode?: PreemptionMode;
  kvDtype?: KvDTypeSetting;
} {
  const kvDtype = readKvDtype(values);
  const hostKvBytes = optionalByteSize(values, 'host-kv-memory');
  const modeText = optionalString(values, 'preemption');
  if (modeText !== undefined && !PREEMPTION_MODES.includes(modeText as PreemptionMode)) {
    throw new UsageError(`--preemption must be one of ${PREEMPTION_MODES.join(', ')}, got '${modeText}'`);
  }
  const preemptionMode = modeText as PreemptionMode | undefined;
  if (preemptionMode !== undefined && preemptionMode !== 'recompute' && hostKvBytes === undefined) {
    throw new UsageError(`--preemption ${preemptionMode} needs --host-kv-memory SIZE`);
  }
  return { hostKvBytes, preemptionMode, ...(kvDtype !== undefined ? { kvDtype } : {}) };
}
