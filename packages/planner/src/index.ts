export {
  calibratedClusterPreset,
  calibratedDevice,
  calibratedIntraHostLink,
} from './calibration/calibrated-devices.ts';
export {
  type CalibrationErrorRow,
  type CalibrationReport,
  calibrationReport,
  formatCalibrationReport,
  MEDIAN_ERROR_THRESHOLD,
} from './calibration/calibration-report.ts';
export { CalibrationDataError } from './calibration/calibration-tables.ts';
export { type FittedProfiles, fitProfiles, shippedFittedProfiles } from './calibration/fitted-profiles.ts';
export {
  type CpuKernelProfile,
  cpuLayerComputeSeconds,
  matmulSeconds,
  matmulSecondsPerRowParam,
} from './cpu-kernel-costs.ts';
export {
  formatGainLine,
  formatRanking,
  formatSearchResult,
  formatSimulationReport,
} from './format-report.ts';
export {
  type ClusterProfile,
  ClusterSpecError,
  clusterNumDevices,
  clusterPreset,
  DEVICE_PRESETS,
  type DeviceProfile,
  type LinkProfile,
  withScaledDeviceLinks,
} from './hardware.ts';
export { deviceKvBlocks, type HostKvCapacity, hostKvCapacity } from './memory-plan.ts';
export { type ModelCosts, modelCosts } from './model-costs.ts';
export { isModelPresetName, MODEL_PRESET_NAMES, type ModelPresetName, modelPreset } from './model-presets.ts';
export { dtypeBytesOf, resolveModel } from './model-source.ts';
export { PipelineTimeline } from './pipeline-timeline.ts';
export {
  loadClusterProfile,
  type MeasuredProfile,
  ProfileFileError,
  parseClusterProfile,
} from './profile-file.ts';
export { type ReplicaLayout, replicaLayout, type StageLayout } from './replica-layout.ts';
export { estimateReshard, type ReshardEstimate, type ReshardRoute } from './reshard-cost.ts';
export {
  type BestConfiguration,
  chooseBestConfiguration,
  chooseSeesawPair,
  type SearchOptions,
  type SearchResult,
  searchConfigurations,
} from './search.ts';
export { parallelConfigsOver, type SearchSpace, searchSpace } from './search-space.ts';
export type { SimulationReport } from './sim-types.ts';
export {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_TOKEN_BUDGET,
  InfeasibleConfigError,
  infeasibility,
  type SimulationOptions,
  type SimulationTarget,
  simulate,
  targetLabel,
} from './simulate.ts';
export { runSimulationJob, runSimulations, type SimulationJob, SimulationPool } from './simulation-pool.ts';
export {
  allReduceSeconds,
  type BatchShape,
  batchShapeOf,
  layerSeconds,
  sharedCoreStageSeconds,
  stageSeconds,
  stepStageSeconds,
  transferSeconds,
} from './step-cost.ts';
export {
  arxivWorkload,
  constantWorkload,
  loadWorkload,
  parseLengthsCsv,
  parseLengthsJsonl,
  sampleRequests,
  shareGptWorkload,
  type Workload,
  WorkloadError,
  type WorkloadOptions,
  type WorkloadRequest,
} from './workloads.ts';
