export type { DeviceSamplingParams, StepBatch, StepResult, StepSeq } from './step.ts';
