import type { TraceEvent } from '@seesaw/coordinator';

/** What a simulated run reports: the figures `seesaw bench` prints, from modelled time. */
export interface SimulationReport {
  /** Static config like 'T2P4', or a pair like 'P8->T4P2'. */
  label: string;
  elapsedSeconds: number;
  numRequests: number;
  numFinished: number;
  /** Requests the scheduler refused (too long for the KV capacity): the run is not comparable. */
  numRejected: number;
  /** Tokens of the requests that ran. */
  promptTokens: number;
  outputTokens: number;
  requestsPerSecond: number;
  totalTokensPerSecond: number;
  outputTokensPerSecond: number;
  numSteps: number;
  numPreemptions: number;
  numSwitches: number;
  /** Wall time in each phase and re-sharding, summed over replicas. */
  prefillSeconds: number;
  decodeSeconds: number;
  reshardSeconds: number;
  /** Steps waiting for prefetches of their sequences, summed over replicas. */
  kvWaitSeconds: number;
  /** Device KV blocks per replica, per layout (one entry for a static config). */
  numKvBlocks: number[];
  /** Host KV slots per replica (0 for a static config). */
  numHostSlots: number;
  /** Cut short at SimulationOptions.stopAfterSeconds: elapsedSeconds is only a lower bound. */
  truncated: boolean;
  /** The timeline, in simulated ms, when asked for. */
  events?: TraceEvent[];
}
