import { ReplicaCluster, type ReplicaClusterOptions } from './replica-cluster.ts';
import { type PhasedDevice, SeesawEngine, type SeesawEngineOptions } from './seesaw-engine.ts';

/**
 * hostKv is each replica's share of the host tier, slot ids local to the replica (its device maps
 * them). onReplicaLost (ReplicaCluster's) makes lost replicas recoverable.
 */
export type SeesawClusterEngineOptions = Omit<SeesawEngineOptions, 'replicaIndex'> &
  Pick<ReplicaClusterOptions, 'onReplicaLost'>;

/**
 * Seesaw over DP replicas: one SeesawEngine per replica (trace tracks 'replica N'), each
 * switching phase on its own, placed on by ReplicaCluster like the static ClusterEngine. Without
 * onReplicaLost a failure of any replica stops the run; with it, a replica lost to
 * DeviceLostError is dropped and its unfinished requests start over on the others.
 */
export class SeesawClusterEngine extends ReplicaCluster<SeesawEngine> {
  constructor(replicas: readonly PhasedDevice[], options: SeesawClusterEngineOptions) {
    const { onReplicaLost, ...engineOptions } = options;
    super(
      replicas.map((replica, index) => new SeesawEngine(replica, { ...engineOptions, replicaIndex: index })),
      { log: engineOptions.log, onReplicaLost },
    );
  }
}
