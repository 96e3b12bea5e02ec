import type { Phase, StepScheduler as SimScheduler, StepPlan, TraceEvent } from '@seesaw/coordinator';
import type { StepResult } from '@seesaw/protocol';
import type { DeviceProfile } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';
import { PipelineTimeline } from './pipeline-timeline.ts';
import type { ReplicaLayout } from './replica-layout.ts';
import type { ReshardEstimate } from './reshard-cost.ts';
import { batchShapeOf, stepStageSeconds } from './step-cost.ts';

/** One replica to simulate: its schedulers ("lanes") and the layouts they run on. */
export interface ReplicaSimulationInput {
  costs: ModelCosts;
  device: DeviceProfile;
  /** [static layout] or [prefill layout, decode layout]. */
  layouts: readonly ReplicaLayout[];
  /** Device KV blocks per layout. */
  numKvBlocks: readonly number[];
  /**
   * Static: one scheduler per pipeline stage's KV partition (the engine's virtual engines),
   * each one step in flight. Seesaw: one scheduler, pp of its phase's layout in flight.
   */
  lanes: readonly SimScheduler[];
  /** Seesaw only: the cost of switching from layout `from` to layout `to`. */
  reshard?: (from: number, to: number) => ReshardEstimate;
  /** Events go here when given (simulated ms). */
  trace: TraceEvent[] | null;
  track: string;
  /** Give up once simulated time passes this (the search's cut for hopeless candidates). */
  stopAfterSeconds?: number;
}

export interface ReplicaSimulationResult {
  elapsedSeconds: number;
  numFinished: number;
  numSteps: number;
  numSwitches: number;
  prefillSeconds: number;
  decodeSeconds: number;
  reshardSeconds: number;
  kvWaitSeconds: number;
  /** Stopped at stopAfterSeconds with work left: elapsedSeconds is a lower bound. */
  truncated: boolean;
}

interface InFlightStep {
  lane: number;
  plan: StepPlan;
  endSeconds: number;
}

const layoutIndexOf = (phase: Phase | null): number => (phase === 'decode' ? 1 : 0);

/**
 * Discrete-event run of one replica: issues every step its schedulers allow, gives each a
 * modelled time through the stage pipeline, applies the earliest finishing step's result at
 * its finish time, and re-shards (drained) when the Seesaw policy asks. Tokens are dummies:
 * every sampled token is 1, and requests ignore EOS, so output lengths are the workload's.
 */
export function simulateReplica(input: ReplicaSimulationInput): ReplicaSimulationResult {
  const { costs, device, lanes, trace, track } = input;
  const seesaw = input.reshard !== undefined;
  let layoutIndex = seesaw ? layoutIndexOf(lanes[0].phase) : 0;
  let layout = input.layouts[layoutIndex];
  let pipeline = new PipelineTimeline(layout.parallel.pp, 0);
  const inFlight: InFlightStep[] = [];
  /** Prefetch completion per sequence, consumed by the first step that contains it. */
  const prefetchDone = new Map<number, number>();
  let hostLinkFree = 0;
  let now = 0;
  let phaseStart = 0;
  const result: ReplicaSimulationResult = {
    elapsedSeconds: 0,
    numFinished: 0,
    numSteps: 0,
    numSwitches: 0,
    prefillSeconds: 0,
    decodeSeconds: 0,
    reshardSeconds: 0,
    kvWaitSeconds: 0,
    truncated: false,
  };
  const stopAfter = input.stopAfterSeconds ?? Number.POSITIVE_INFINITY;
  const kvLink = device.kvTransferLink ?? device.hostLink;
  const hostRate = kvLink.bytesPerSecond;
  // A CPU device has no copy engine: the puts' work shares the cores with compute.
  const isWriteBackSerial = device.cpuKernels !== undefined;
  const maxKvPerToken = (): number =>
    Math.max(...layout.stages.map((stage) => stage.kvBytesPerTokenPerDevice));

  const closePhase = (): void => {
    if (!seesaw) return;
    if (layoutIndex === 0) result.prefillSeconds += now - phaseStart;
    else result.decodeSeconds += now - phaseStart;
  };

  const issue = (laneIndex: number, plan: StepPlan): void => {
    const { batch } = plan;
    const stageSeconds = stepStageSeconds(costs, device, layout, batchShapeOf(batch));
    // Write-backs overlap the step's layers; the step answers after the last layer's puts.
    const writeBackTokens = (batch.kvWriteBacks ?? []).reduce((sum, swap) => sum + swap.numTokens, 0);
    const swapTokens = [...(batch.swapOuts ?? []), ...(batch.swapIns ?? [])].reduce(
      (sum, s) => sum + s.numTokens,
      0,
    );
    layout.stages.forEach((stage, s) => {
      if (writeBackTokens > 0) {
        const seconds = (writeBackTokens * stage.kvBytesPerTokenPerDevice) / hostRate;
        stageSeconds[s] = isWriteBackSerial
          ? stageSeconds[s] + seconds
          : Math.max(stageSeconds[s], seconds) + seconds / stage.numLayers;
      }
      if (swapTokens > 0) stageSeconds[s] += (swapTokens * stage.kvBytesPerTokenPerDevice) / hostRate;
    });
    let ready = now;
    for (const seq of batch.seqs) {
      const done = prefetchDone.get(seq.seqId);
      if (done === undefined) continue;
      prefetchDone.delete(seq.seqId);
      ready = Math.max(ready, done);
    }
    const wait = Math.max(0, ready - Math.max(now, pipeline.firstStageFree()));
    result.kvWaitSeconds += wait;
    const { start, end } = pipeline.run(ready, stageSeconds);
    // Prefetches queue on the host link (each device pulls its share at once).
    for (const swap of batch.prefetches ?? []) {
      const begin = Math.max(now, hostLinkFree);
      hostLinkFree = begin + kvLink.latencySeconds + (swap.numTokens * maxKvPerToken()) / hostRate;
      prefetchDone.set(swap.seqId, hostLinkFree);
      trace?.push({
        track: `${track} kv`,
        name: 'prefetch',
        category: 'kv',
        startMs: begin * 1000,
        durationMs: (hostLinkFree - begin) * 1000,
        args: { seqId: swap.seqId, numTokens: swap.numTokens },
      });
    }
    inFlight.push({ lane: laneIndex, plan, endSeconds: end });
    if (trace) {
      const isPrefill = plan.chunks.some((chunk) => !(chunk.numNewTokens === 1 && chunk.isSampled));
      const phase = lanes[laneIndex].phase ?? (isPrefill ? 'prefill' : 'decode');
      if (wait > 0) {
        trace.push({
          track,
          name: 'prefetch wait',
          category: 'wait',
          startMs: (ready - wait) * 1000,
          durationMs: wait * 1000,
        });
      }
      trace.push({
        track,
        name: `step ${batch.stepId}`,
        category: phase,
        startMs: start * 1000,
        durationMs: (end - start) * 1000,
        args: {
          numTokens: batch.seqs.reduce((sum, seq) => sum + seq.tokenIds.length, 0),
          numSeqs: batch.seqs.length,
          phase,
        },
      });
      if (writeBackTokens > 0) {
        trace.push({
          track: `${track} kv`,
          name: 'write-back',
          category: 'kv',
          startMs: start * 1000,
          durationMs: (end - start) * 1000,
          args: { numTokens: writeBackTokens },
        });
      }
    }
  };

  const switchTo = (phase: Phase): void => {
    closePhase();
    const next = layoutIndexOf(phase);
    const estimate = input.reshard!(layoutIndex, next);
    trace?.push({
      track: `${track} reshard`,
      name: `reshard to ${phase}`,
      category: 'reshard',
      startMs: now * 1000,
      durationMs: estimate.seconds * 1000,
      args: { bytesMoved: estimate.bytesMoved, bytesFromHost: estimate.bytesFromHost, route: estimate.route },
    });
    now += estimate.seconds;
    result.reshardSeconds += estimate.seconds;
    result.numSwitches++;
    layoutIndex = next;
    layout = input.layouts[next];
    pipeline = new PipelineTimeline(layout.parallel.pp, now);
    hostLinkFree = Math.max(hostLinkFree, now);
    phaseStart = now;
    lanes[0].enterPhase(phase, input.numKvBlocks[next], { maxInFlight: layout.parallel.pp });
  };

  for (;;) {
    if (seesaw && inFlight.length === 0) {
      const phase = lanes[0].pendingSwitch();
      if (phase !== null) {
        switchTo(phase);
        continue;
      }
    }
    lanes.forEach((lane, laneIndex) => {
      while (lane.numInFlight < lane.maxInFlight) {
        const plan = lane.schedule();
        if (plan === null) break;
        issue(laneIndex, plan);
      }
    });
    if (inFlight.length === 0) {
      if (
        lanes.some((lane) => lane.hasUnfinishedRequests()) ||
        (seesaw && lanes[0].pendingSwitch() !== null)
      ) {
        if (seesaw && lanes[0].pendingSwitch() !== null) continue;
        throw new Error(`${track}: simulation stuck: requests unfinished and nothing schedulable`);
      }
      break;
    }
    if (now > stopAfter) {
      result.truncated = true;
      break;
    }
    let first = 0;
    for (let i = 1; i < inFlight.length; i++)
      if (inFlight[i].endSeconds < inFlight[first].endSeconds) first = i;
    const step = inFlight.splice(first, 1)[0];
    now = Math.max(now, step.endSeconds);
    const sampled: StepResult['sampled'] = [];
    for (const seq of step.plan.batch.seqs) if (seq.isSampled) sampled.push({ seqId: seq.seqId, tokenId: 1 });
    result.numFinished += lanes[step.lane].update(
      step.plan,
      { stepId: step.plan.batch.stepId, sampled },
      now * 1000,
    ).length;
    result.numSteps++;
  }
  closePhase();
  result.elapsedSeconds = now;
  return result;
}
