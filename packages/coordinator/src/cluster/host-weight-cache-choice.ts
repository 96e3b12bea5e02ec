/**
 * Whether a host keeps the host weight cache (each device's shard under both Seesaw layouts in
 * host memory): the CLI decides it for a local run, a host agent for its devices of a remote job.
 */
import { formatBytes } from './format-bytes.ts';

/** The host weight cache holds each device's shard under both layouts: about 2.2x a replica's weights (measured 2.2x on small P2 <-> T2). */
const HOST_WEIGHT_CACHE_PER_WEIGHT_BYTE = 2.25;

/**
 * As --host-weight-cache says, else on when its estimated size fits in half the free RAM (the
 * device workers, the KV tiers and the OS need the rest), off with a line saying why otherwise:
 * a default must not exhaust the host.
 */
export function chooseHostWeightCache(
  setting: 'on' | 'off' | undefined,
  weightBytesHere: number,
  freeBytes: number,
): { isOn: boolean; why?: string } {
  if (setting !== undefined) return { isOn: setting === 'on' };
  const needed = HOST_WEIGHT_CACHE_PER_WEIGHT_BYTE * weightBytesHere;
  if (needed <= freeBytes / 2) return { isOn: true };
  return {
    isOn: false,
    why:
      `host weight cache off: it would take about ${formatBytes(needed)}, more than half ` +
      `the ${formatBytes(freeBytes)} free (--host-weight-cache on keeps it)`,
  };
}
