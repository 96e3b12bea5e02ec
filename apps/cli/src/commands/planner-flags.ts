/**
 * Flags `seesaw plan` and `seesaw simulate` share: the model (preset or directory), the
 * hardware (a cluster preset or a measured profile) and the workload. A GPU cluster preset takes
 * its device rates and device links from the profiles fitted to measured GPU tables
 * (`seesaw validate` holds them against the tables); `--assumed-profiles` plans with the
 * datasheet x assumed-efficiency presets instead.
 */

import type { ModelConfig } from '@seesaw/model';
import {
  type ClusterProfile,
  calibratedClusterPreset,
  clusterPreset,
  dtypeBytesOf,
  loadClusterProfile,
  loadWorkload,
  resolveModel,
  shippedFittedProfiles,
  type Workload,
} from '@seesaw/planner';
import { type FlagValues, optionalByteSize, optionalInteger, optionalString, UsageError } from '../args.ts';
import { readKvDtype } from '../host-kv-flags.ts';

export interface PlannerInputs {
  model: ModelConfig;
  modelName: string;
  dtypeBytes: number;
  /** Bytes per cached K/V element from --kv-dtype; absent: the device profile's width. */
  kvBytesPerElement?: number;
  cluster: ClusterProfile;
  workload: Workload;
  maxNumBatchedTokens?: number;
  maxNumSeqs?: number;
}

export function readPlannerInputs(values: FlagValues, defaults: { workload: string }): PlannerInputs {
  const modelName = optionalString(values, 'model') ?? optionalString(values, 'model-dir');
  if (modelName === undefined) throw new UsageError('missing --model PRESET|DIR (or --model-dir DIR)');
  let model: ModelConfig;
  try {
    model = resolveModel(modelName);
  } catch (error) {
    throw new UsageError(`--model: ${(error as Error).message}`);
  }
  const profilePath = optionalString(values, 'profile');
  const clusterSpec = optionalString(values, 'cluster');
  if (profilePath !== undefined && clusterSpec !== undefined)
    throw new UsageError('give --cluster or --profile, not both');
  let cluster: ClusterProfile;
  try {
    const spec = clusterSpec ?? '8xA10';
    cluster =
      profilePath !== undefined
        ? loadClusterProfile(profilePath)
        : values['assumed-profiles'] === true
          ? clusterPreset(spec)
          : calibratedClusterPreset(spec, shippedFittedProfiles());
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const devices = optionalInteger(values, 'devices', { min: 1, max: 4096 });
  if (devices !== undefined) cluster = { ...cluster, numHosts: 1, devicesPerHost: devices };
  const deviceMemory = optionalByteSize(values, 'device-memory');
  if (deviceMemory !== undefined)
    cluster = { ...cluster, device: { ...cluster.device, memoryBytes: deviceMemory } };
  const hostMemory = optionalByteSize(values, 'host-memory');
  if (hostMemory !== undefined) cluster = { ...cluster, hostMemoryBytesPerDevice: hostMemory };
  const workloadSpec = optionalString(values, 'workload') ?? defaults.workload;
  let workload: Workload;
  try {
    workload = loadWorkload(workloadSpec, {
      numRequests: optionalInteger(values, 'num-requests', { min: 1 }),
      seed: optionalInteger(values, 'seed', { min: 0, max: 2 ** 32 - 1 }),
      maxModelLen: model.maxPositionEmbeddings,
    });
  } catch (error) {
    throw new UsageError(`--workload: ${(error as Error).message}`);
  }
  if (workload.requests.length === 0)
    throw new UsageError(`--workload ${workloadSpec}: no request fits the model's length`);
  return {
    model,
    modelName,
    dtypeBytes: dtypeBytesOf(model),
    kvBytesPerElement: readKvBytesPerElement(values, model),
    cluster,
    workload,
    maxNumBatchedTokens: optionalInteger(values, 'max-num-batched-tokens', { min: 1 }),
    maxNumSeqs: optionalInteger(values, 'max-num-seqs', { min: 1 }),
  };
}

/**
 * --kv-dtype as the planner sizes it: bytes per cached K/V element. `auto` is the weights' width
 * (the engine's auto: a 16-bit checkpoint's own type, else f32). Absent: undefined, so the device
 * profile decides (f32 on a measured CPU profile, as the engine's default; the weights' width on GPUs).
 */
function readKvBytesPerElement(values: FlagValues, model: ModelConfig): number | undefined {
  const setting = readKvDtype(values);
  if (setting === undefined) return undefined;
  if (setting === 'auto') return dtypeBytesOf(model);
  return setting === 'f32' ? 4 : 2;
}
