import { ReplicaCluster } from './replica-cluster.ts';
import { type PhasedDevice, SeesawEngine, type SeesawEngineOptions } from './seesaw-engine.ts';

/** hostKv is each replica's share of the host tier, slot ids local to the replica (its device maps them). */
export type SeesawClusterEngineOptions = Omit<SeesawEngineOptions, 'replicaIndex'>;

/**
 * Seesaw over DP replicas: one SeesawEngine per replica (trace tracks 'replica N'), each
 * switching phase on its own, placed on by ReplicaCluster like the static ClusterEngine. A
 * failure of any replica stops the run (no replica recovery).
 */
export class SeesawClusterEngine extends ReplicaCluster<SeesawEngine> {
  constructor(replicas: readonly PhasedDevice[], options: SeesawClusterEngineOptions) {
    super(replicas.map((replica, index) => new SeesawEngine(replica, { ...options, replicaIndex: index })));
  }
}
