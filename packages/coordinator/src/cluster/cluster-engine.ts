/**
 * The static policy over DP replicas: one Engine (one EngineCore with the vLLM-style Scheduler)
 * per replica, with pp steps in flight so the replica's pipeline stages work on different steps
 * at once. With dp = pp = 1 this is exactly one Engine on one device. Placement and recovery
 * from lost replicas are ReplicaCluster's; a lost replica's actors are closed here.
 */
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { Engine, type EngineOptions, type ExecutionDevice } from '../engine.ts';
import { ReplicaCluster } from '../replica-cluster.ts';
import { ReplicaDevice } from './replica-device.ts';
import { withHostSlots } from './replica-host-slots.ts';

/**
 * hostKv, when given, is each replica's share of the host KV tier (LocalCluster.engineHostKv):
 * replica r swaps to host slots [r * hostKv.numSlots, (r + 1) * hostKv.numSlots).
 */
export interface ClusterEngineOptions extends Omit<EngineOptions, 'maxInFlight'> {
  /** Where recovery events go (a replica lost, requests requeued). */
  log?: (line: string) => void;
}

export class ClusterEngine extends ReplicaCluster<Engine> {
  /** `pp`: each replica's pipeline depth, the steps it has in flight. */
  constructor(replicas: readonly ExecutionDevice[], pp: number, options: ClusterEngineOptions) {
    const { log, ...engineOptions } = options;
    const hostKv = engineOptions.hostKv;
    const engines = replicas.map(
      (replica, r) =>
        new Engine(hostKv ? inHostSlotRange(replica, r, hostKv.numSlots) : replica, {
          ...engineOptions,
          maxInFlight: pp,
        }),
    );
    super(engines, {
      log,
      onReplicaLost: async (r) => {
        const replica = replicas[r];
        if (!(replica instanceof ReplicaDevice)) return;
        await replica.abort();
      },
    });
  }
}

/** The replica with its scheduler's host slot ids 0..numSlots-1 moved into replica r's range. */
function inHostSlotRange(replica: ExecutionDevice, r: number, numSlots: number): ExecutionDevice {
  const slots = { numSlots, slotOffset: r * numSlots };
  return {
    numKvBlocks: replica.numKvBlocks,
    blockSize: replica.blockSize,
    execute: (batch: StepBatch): Promise<StepResult> => replica.execute(withHostSlots(batch, slots, r)),
  };
}
