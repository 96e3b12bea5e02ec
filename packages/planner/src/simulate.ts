import {
  type EngineRequest,
  RequestRejectedError,
  Scheduler,
  type SeesawSchedulerConfig,
  type StepScheduler,
  type TraceEvent,
} from '@seesaw/coordinator';
import { formatParallelConfig, type ModelConfig, type ParallelConfig, validateForModel } from '@seesaw/model';
import { ENGINE_DEFAULTS } from '@seesaw/protocol';
import { type ClusterProfile, clusterNumDevices } from './hardware.ts';
import { deviceKvBlocks, hostKvCapacity } from './memory-plan.ts';
import { type ModelCosts, modelCosts } from './model-costs.ts';
import { type ReplicaLayout, replicaLayout } from './replica-layout.ts';
import { type ReplicaSimulationResult, simulateReplica } from './replica-simulation.ts';
import { estimateReshard, type ReshardRoute } from './reshard-cost.ts';
import { createSeesawScheduler } from './seesaw-lane.ts';
import type { SimulationReport } from './sim-types.ts';
import type { Workload } from './workloads.ts';

export type SimulationTarget =
  | { kind: 'static'; parallel: ParallelConfig }
  | { kind: 'seesaw'; prefill: ParallelConfig; decode: ParallelConfig };

export interface SimulationOptions {
  /** Tokens per KV block and host slot (default 16). */
  blockSize?: number;
  /** Token budget per step: the static chunked-prefill budget and Seesaw's prefill budget (default 4096). */
  maxNumBatchedTokens?: number;
  /** Running sequences cap per scheduler (default 256). */
  maxNumSeqs?: number;
  /** Free-block watermark: static default 0.01 (the engine's), Seesaw default 0.1 (the artifact's). */
  watermark?: number;
  /** Seesaw decode -> prefill threshold on host KV usage (default 0.2). */
  hostLowMark?: number;
  reshardRoute?: ReshardRoute;
  /** Record a timeline (TraceEvent[] in simulated ms). */
  trace?: boolean;
  /** Bytes per weight element (default 2: fp16/bf16). */
  dtypeBytes?: number;
  /**
   * Bytes per cached K/V element (--kv-dtype). Default: the device's computeBytesPerElement (4 on
   * a measured CPU profile: the engine's default f32 KV), else dtypeBytes.
   */
  kvBytesPerElement?: number;
  /** Stop a replica once its simulated time passes this; the report is then marked truncated. */
  stopAfterSeconds?: number;
}

export class InfeasibleConfigError extends Error {
  override name = 'InfeasibleConfigError';
}

export const DEFAULT_BLOCK_SIZE = ENGINE_DEFAULTS.blockSize;
export const DEFAULT_TOKEN_BUDGET = 4096;

export function targetLabel(target: SimulationTarget): string {
  return target.kind === 'static'
    ? formatParallelConfig(target.parallel)
    : `${formatParallelConfig(target.prefill)}->${formatParallelConfig(target.decode)}`;
}

function targetLayouts(target: SimulationTarget): ParallelConfig[] {
  return target.kind === 'static' ? [target.parallel] : [target.prefill, target.decode];
}

/** The options that size a model on a device: block size, weight and KV element widths. */
export type ModelCostOptions = Pick<SimulationOptions, 'blockSize' | 'dtypeBytes' | 'kvBytesPerElement'>;

/** The model's byte counts on the cluster's devices (activation width from the device profile). */
function costsOn(cluster: ClusterProfile, config: ModelConfig, options: ModelCostOptions) {
  const dtypeBytes = options.dtypeBytes ?? 2;
  const computeBytes = cluster.device.computeBytesPerElement ?? dtypeBytes;
  return modelCosts(config, dtypeBytes, computeBytes, options.kvBytesPerElement ?? computeBytes);
}

/**
 * Why a target cannot run the model on the cluster (null when it can): device count, head and
 * layer divisibility, equal DP and device count for a pair, weights fitting device memory.
 */
export function infeasibility(
  config: ModelConfig,
  cluster: ClusterProfile,
  target: SimulationTarget,
  options: ModelCostOptions = {},
): string | null {
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const costs = costsOn(cluster, config, options);
  const total = clusterNumDevices(cluster);
  const layouts = targetLayouts(target);
  if (target.kind === 'seesaw' && target.prefill.dp !== target.decode.dp)
    return 'prefill and decode DP differ';
  for (const parallel of layouts) {
    // A pair's message names which of its layouts fails.
    const where = target.kind === 'seesaw' ? `${formatParallelConfig(parallel)} ` : '';
    if (parallel.dp * parallel.tp * parallel.pp !== total)
      return `${where}does not use the cluster's ${total} devices`;
    try {
      validateForModel(parallel, config);
    } catch (error) {
      return (error as Error).message;
    }
    if (deviceKvBlocks(cluster.device, replicaLayout(costs, cluster, parallel, 0), blockSize) < 1) {
      return `${where}the weights leave no device memory for KV`;
    }
  }
  return null;
}

function dummyRequest(index: number, promptTokens: number, outputTokens: number): EngineRequest {
  return {
    requestId: String(index),
    promptTokenIds: new Array<number>(promptTokens).fill(1),
    sampling: {
      maxTokens: outputTokens,
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 0,
      stopTokenIds: [],
      ignoreEos: true,
    },
  };
}

interface ReplicaSetup {
  layouts: ReplicaLayout[];
  numKvBlocks: number[];
  scheduler: StepScheduler;
  numHostSlots: number;
}

/** The replica's layouts, KV capacity and scheduler, as the engine would set them up. */
function setUpReplica(
  costs: ModelCosts,
  cluster: ClusterProfile,
  target: SimulationTarget,
  replicaIndex: number,
  options: SimulationOptions,
): ReplicaSetup {
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const layouts = targetLayouts(target).map((parallel) =>
    replicaLayout(costs, cluster, parallel, replicaIndex),
  );
  const numKvBlocks = layouts.map((layout) => deviceKvBlocks(cluster.device, layout, blockSize));
  const maxModelLen = costs.config.maxPositionEmbeddings;
  const maxNumBatchedTokens = options.maxNumBatchedTokens ?? DEFAULT_TOKEN_BUDGET;
  const maxNumSeqs = options.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs;
  if (target.kind === 'static') {
    // As the engine: one scheduler over all the replica's blocks, pp steps in flight.
    const scheduler = new Scheduler({
      numKvBlocks: numKvBlocks[0],
      blockSize,
      maxNumBatchedTokens,
      maxNumSeqs,
      maxModelLen,
      eosTokenIds: [],
      watermark: options.watermark ?? 0.01,
      maxInFlight: target.parallel.pp,
      randomSeed: () => 0,
    });
    return { layouts, numKvBlocks, scheduler, numHostSlots: 0 };
  }
  const host = hostKvCapacity(costs, cluster, target.prefill.tp * target.prefill.pp, blockSize);
  const settings: SeesawSchedulerConfig = {
    blockSize,
    numKvBlocks: numKvBlocks[0],
    hostKv: { numSlots: host.numSlots, tokensPerSlot: blockSize, slotBytes: host.slotBytes },
    maxNumBatchedTokens,
    maxNumSeqs,
    numDecodeKvBlocks: numKvBlocks[1],
    maxModelLen,
    eosTokenIds: [],
    watermark: options.watermark ?? 0.1,
    hostLowMark: options.hostLowMark ?? 0.2,
    maxInFlight: target.prefill.pp,
    randomSeed: () => 0,
  };
  return { layouts, numKvBlocks, scheduler: createSeesawScheduler(settings), numHostSlots: host.numSlots };
}

/**
 * Simulates a workload on a cluster under a static configuration or a Seesaw pair. DP
 * replicas are independent: request i goes to replica i mod dp (an even split). Each replica runs
 * the engine's own loop (EngineCore) with a simulated executor on a virtual clock. All requests
 * arrive at time 0 (offline throughput).
 */
export function simulate(
  config: ModelConfig,
  cluster: ClusterProfile,
  target: SimulationTarget,
  workload: Workload,
  options: SimulationOptions = {},
): Promise<SimulationReport> {
  // Thrown at the call, not as a rejection: the search filters candidates by it.
  const problem = infeasibility(config, cluster, target, options);
  if (problem !== null) throw new InfeasibleConfigError(`${targetLabel(target)}: ${problem}`);
  return simulateFeasible(config, cluster, target, workload, options);
}

async function simulateFeasible(
  config: ModelConfig,
  cluster: ClusterProfile,
  target: SimulationTarget,
  workload: Workload,
  options: SimulationOptions,
): Promise<SimulationReport> {
  const costs = costsOn(cluster, config, options);
  const dp = target.kind === 'static' ? target.parallel.dp : target.prefill.dp;
  const trace: TraceEvent[] | null = options.trace ? [] : null;
  const replicaResults: ReplicaSimulationResult[] = [];
  let numRejected = 0;
  let promptTokens = 0;
  let outputTokens = 0;
  let numPreemptions = 0;
  let setup: ReplicaSetup | null = null;
  for (let r = 0; r < dp; r++) {
    setup = setUpReplica(costs, cluster, target, r, options);
    for (let i = r; i < workload.requests.length; i += dp) {
      const request = workload.requests[i];
      try {
        setup.scheduler.addRequest(dummyRequest(i, request.promptTokens, request.outputTokens), 0);
      } catch (error) {
        if (!(error instanceof RequestRejectedError)) throw error;
        numRejected++;
        continue;
      }
      promptTokens += request.promptTokens;
      outputTokens += request.outputTokens;
    }
    const layouts = setup.layouts;
    const route = options.reshardRoute ?? 'auto';
    replicaResults.push(
      await simulateReplica({
        costs,
        device: cluster.device,
        blockSize: options.blockSize ?? DEFAULT_BLOCK_SIZE,
        layouts,
        numKvBlocks: setup.numKvBlocks,
        scheduler: setup.scheduler,
        reshard:
          target.kind === 'seesaw'
            ? (from, to) => estimateReshard(costs, cluster, layouts[from], layouts[to], route)
            : undefined,
        trace,
        track: `replica ${r}`,
        stopAfterSeconds: options.stopAfterSeconds,
      }),
    );
    numPreemptions += setup.scheduler.counters.numPreemptions;
  }
  const sum = (key: Exclude<keyof ReplicaSimulationResult, 'truncated'>): number =>
    replicaResults.reduce((total, result) => total + result[key], 0);
  const elapsedSeconds = Math.max(...replicaResults.map((result) => result.elapsedSeconds));
  const numFinished = sum('numFinished');
  // Throughput counts only requests that ran; a run with rejections is flagged by numRejected.
  return {
    label: targetLabel(target),
    elapsedSeconds,
    numRequests: workload.requests.length,
    numFinished,
    numRejected,
    promptTokens,
    outputTokens,
    requestsPerSecond: numFinished / elapsedSeconds,
    totalTokensPerSecond: (promptTokens + outputTokens) / elapsedSeconds,
    outputTokensPerSecond: outputTokens / elapsedSeconds,
    numSteps: sum('numSteps'),
    numPreemptions,
    numSwitches: sum('numSwitches'),
    prefillSeconds: sum('prefillSeconds'),
    decodeSeconds: sum('decodeSeconds'),
    reshardSeconds: sum('reshardSeconds'),
    kvWaitSeconds: sum('kvWaitSeconds'),
    truncated: replicaResults.some((result) => result.truncated),
    numKvBlocks: setup?.numKvBlocks ?? [],
    numHostSlots: setup?.numHostSlots ?? 0,
    ...(trace ? { events: trace } : {}),
  };
}
