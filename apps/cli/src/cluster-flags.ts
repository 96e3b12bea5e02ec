/**
 * The flags that run the engine on a local cluster of device workers instead of one in-process
 * CPU device: --devices N --config DxTyPz [--device-memory SIZE]. Both of the first two or neither.
 */
import { formatParallelConfig, numDevices, type ParallelConfig, parseParallelConfig } from '@seesaw/model';
import { type FlagValues, optionalByteSize, optionalInteger, optionalString, UsageError } from './args.ts';

export interface ClusterSettings {
  numDevices: number;
  parallel: ParallelConfig;
  /** Each device's weights + KV cache budget; absent: the whole checkpoint plus 512 MiB of KV cache. */
  deviceMemoryBytes?: number;
}

export function readClusterSettings(values: FlagValues): ClusterSettings | undefined {
  const numDeviceFlag = optionalInteger(values, 'devices', { min: 1, max: 4096 });
  const configText = optionalString(values, 'config');
  const deviceMemoryBytes = optionalByteSize(values, 'device-memory');
  if (numDeviceFlag === undefined && configText === undefined) {
    if (deviceMemoryBytes !== undefined) throw new UsageError('--device-memory needs --devices and --config');
    return undefined;
  }
  if (values['kv-cache-memory'] !== undefined) {
    throw new UsageError(
      '--kv-cache-memory does not apply to a cluster: each device gets --device-memory minus its weights',
    );
  }
  if (numDeviceFlag === undefined) throw new UsageError('--config needs --devices N');
  if (configText === undefined) throw new UsageError('--devices needs --config (e.g. --config T2)');
  let parallel: ParallelConfig;
  try {
    parallel = parseParallelConfig(configText);
  } catch (error) {
    throw new UsageError(`--config: ${error instanceof Error ? error.message : String(error)}`);
  }
  const needed = numDevices(parallel);
  if (needed !== numDeviceFlag) {
    throw new UsageError(
      `--devices ${numDeviceFlag} does not match --config ${formatParallelConfig(parallel)}, ` +
        `which needs dp * tp * pp = ${parallel.dp} * ${parallel.tp} * ${parallel.pp} = ${needed} devices`,
    );
  }
  const settings: ClusterSettings = { numDevices: needed, parallel };
  if (deviceMemoryBytes !== undefined) settings.deviceMemoryBytes = deviceMemoryBytes;
  return settings;
}
