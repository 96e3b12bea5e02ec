/**
 * The flags of the host-memory KV tier: --host-kv-memory SIZE gives preemption a place to swap
 * sequences to instead of recomputing them; --preemption picks the policy (auto: swap when the
 * cost model says moving the KV out and back is cheaper than recomputing it). With --devices the
 * tier is one kv-store worker for the host, split evenly over the cluster's engines; with
 * --cluster every host of the job runs one kv-store of SIZE bytes.
 */
import type { PreemptionMode } from '@seesaw/coordinator';
import { type FlagValues, optionalByteSize, optionalString, UsageError } from './args.ts';

const PREEMPTION_MODES: readonly PreemptionMode[] = ['auto', 'swap', 'recompute'];

export function readHostKvSettings(values: FlagValues): {
  hostKvBytes?: number;
  preemptionMode?: PreemptionMode;
} {
  const hostKvBytes = optionalByteSize(values, 'host-kv-memory');
  const modeText = optionalString(values, 'preemption');
  if (modeText !== undefined && !PREEMPTION_MODES.includes(modeText as PreemptionMode)) {
    throw new UsageError(`--preemption must be one of ${PREEMPTION_MODES.join(', ')}, got '${modeText}'`);
  }
  const preemptionMode = modeText as PreemptionMode | undefined;
  if (preemptionMode !== undefined && preemptionMode !== 'recompute' && hostKvBytes === undefined) {
    throw new UsageError(`--preemption ${preemptionMode} needs --host-kv-memory SIZE`);
  }
  return { hostKvBytes, preemptionMode };
}
