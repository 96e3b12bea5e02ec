/**
 * What a remote Seesaw job goes on with once every replica lost a device: the devices still
 * healthy (those of the job on hosts still joined, less the devices named lost), and the first
 * layout of rankedSeesawReplans that can run there (a pair whose re-shard fits a device, else a
 * static layout), as the EngineConfig the new devices are started with.
 */
import { Checkpoint, formatParallelConfig, type ModelConfig, type ParallelConfig } from '@seesaw/model';
import type { EngineConfig } from '@seesaw/protocol';
import { rankedSeesawReplans } from '../cluster/seesaw-replan.ts';
import { planSeesawJob, type SeesawJobPlan } from './job-engine.ts';
import { jobDeviceMemoryBytes } from './remote-replicas.ts';

/** One layout the job runs on: the prefill (or static) layout, and its Seesaw part. */
export interface JobLayout {
  parallel: ParallelConfig;
  seesaw: SeesawJobPlan | undefined;
  /** The job's EngineConfig with this layout (what the devices are loaded with). */
  engineConfig: EngineConfig;
}

/** 'prefill P2, decode T2' or 'D2'. */
export function jobLayoutName({
  parallel,
  seesaw,
}: {
  parallel: ParallelConfig;
  seesaw?: { decode: ParallelConfig } | undefined;
}): string {
  return seesaw
    ? `prefill ${formatParallelConfig(parallel)}, decode ${formatParallelConfig(seesaw.decode)}`
    : formatParallelConfig(parallel);
}

/**
 * Devices of the job still healthy: on a host `isHostUp` accepts, and not named (remote device
 * names start 'device N ') among `lostDevices`.
 */
export function countHealthyDevices(
  deviceHosts: readonly string[],
  lostDevices: readonly string[],
  isHostUp: (host: string) => boolean,
): number {
  const lost = new Set(lostDevices.map((name) => Number(/^device (\d+) /.exec(name)?.[1] ?? -1)));
  return deviceHosts.filter((host, device) => isHostUp(host) && !lost.has(device)).length;
}

/**
 * The first candidate (rankedSeesawReplans' order) that plans on numHealthy devices; throws
 * naming why none does. A replica must hold the weights: at least weights / device memory devices.
 */
export function replanJobLayout(
  lost: JobLayout & { seesaw: SeesawJobPlan },
  numHealthy: number,
  config: ModelConfig,
): JobLayout {
  const base = lost.engineConfig;
  const minDevicesPerReplica = Math.ceil(
    Checkpoint.tensorBytesOf(base.model.dir) / jobDeviceMemoryBytes(base),
  );
  const candidates = rankedSeesawReplans(
    { prefill: lost.parallel, decode: lost.seesaw.decode },
    numHealthy,
    config,
    { minDevicesPerReplica },
  );
  const refusals: string[] = [];
  for (const candidate of candidates) {
    const parallel = candidate.kind === 'seesaw' ? candidate.prefill : candidate.parallel;
    const { decodeLayout: _lostDecode, ...staticParallel } = base.parallel;
    const engineConfig: EngineConfig = {
      ...base,
      parallel: {
        ...staticParallel,
        layout: formatParallelConfig(parallel),
        numDevices: parallel.dp * parallel.tp * parallel.pp,
        ...(candidate.kind === 'seesaw' ? { decodeLayout: formatParallelConfig(candidate.decode) } : {}),
      },
    };
    try {
      return { parallel, seesaw: planSeesawJob(engineConfig, config, parallel), engineConfig };
    } catch (error) {
      const name =
        candidate.kind === 'seesaw'
          ? jobLayoutName({ parallel, seesaw: candidate })
          : formatParallelConfig(parallel);
      refusals.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new Error(
    `no layout to re-plan onto on the ${numHealthy} healthy device${numHealthy === 1 ? '' : 's'} left` +
      (refusals.length ? ` (${refusals.join('; ')})` : ''),
  );
}
