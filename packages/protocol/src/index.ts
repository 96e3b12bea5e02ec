export * from './check.ts';
export * from './codec.ts';
export * from './connection-gate.ts';
export * from './device-worker-contract.ts';
export * from './endpoint.ts';
export * from './engine-config.ts';
export * from './engine-defaults.ts';
export * from './handshake.ts';
export * from './in-process.ts';
export * from './log-safety.ts';
export * from './messages/common.ts';
export * from './messages/coordinator-device.ts';
export * from './messages/coordinator-kv-store.ts';
export * from './messages/device-device.ts';
export * from './messages/device-kv-store.ts';
export * from './messages/host-agent.ts';
export * from './messages/index.ts';
export * from './messages/job-client.ts';
export * from './messages/reshard-plan-data.ts';
export * from './messages/schema.ts';
export * from './parallel-layout.ts';
export * from './shared-region.ts';
export type {
  AddedSeq,
  DeviceKvReport,
  DeviceOutputHistory,
  DeviceSamplingParams,
  DeviceSpan,
  DeviceSpanName,
  SampledLogprobs,
  SampledToken,
  StepBatch,
  StepKvSwap,
  StepKvTimings,
  StepResult,
  StepSeq,
  TokenLogprob,
} from './step.ts';
export * from './tensor.ts';
export * from './tls.ts';
export * from './websocket.ts';
export * from './worker-port.ts';
