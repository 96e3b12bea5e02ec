/**
 * An engine session over a LocalCluster: one device worker per device of the --config layout,
 * the --threads split evenly over them (at least one each), a ClusterEngine in front.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { ClusterEngine, LocalCluster } from '@seesaw/coordinator';
import { Checkpoint, formatParallelConfig } from '@seesaw/model';
import type { ClusterSettings } from './cluster-flags.ts';
import type { EngineSession, EngineSettings } from './engine-session.ts';

/** KV cache each device gets by default on top of the whole checkpoint (CpuDevice's own default). */
const DEFAULT_KV_CACHE_BYTES = 512 * 1024 * 1024;

/** Bytes of every tensor of the checkpoint: what one device holding the whole model needs. */
function checkpointBytes(modelDir: string): number {
  const checkpoint = Checkpoint.open(modelDir);
  try {
    return checkpoint.names().reduce((sum, name) => sum + checkpoint.info(name).byteLength, 0);
  } finally {
    checkpoint.close();
  }
}

export async function openClusterSession(
  modelDir: string,
  settings: EngineSettings,
  cluster: ClusterSettings,
): Promise<EngineSession> {
  // Loaded here for the same reason as in openEngineSession: native kernels only when needed.
  const { createDeviceWorkerGroup, deviceWorkerUrl } = await import('@seesaw/gpu-actor');
  const numThreads = settings.numThreads ?? availableParallelism();
  const numThreadsPerDevice = Math.max(1, Math.floor(numThreads / cluster.numDevices));
  const deviceMemoryBytes = cluster.deviceMemoryBytes ?? checkpointBytes(modelDir) + DEFAULT_KV_CACHE_BYTES;
  const localCluster = await LocalCluster.start({
    workerUrl: deviceWorkerUrl(),
    modelDir,
    parallel: cluster.parallel,
    numThreadsPerDevice,
    deviceMemoryBytes,
    token: randomBytes(24).toString('base64url'),
    createTpGroup: createDeviceWorkerGroup,
  });
  const config = localCluster.config;
  const engine = new ClusterEngine(localCluster.replicas, cluster.parallel.pp, {
    maxNumBatchedTokens: settings.maxNumBatchedTokens,
    maxNumSeqs: settings.maxNumSeqs,
    maxModelLen: config.maxPositionEmbeddings,
    eosTokenIds: config.eosTokenIds,
  });
  let isFailed = false;
  return {
    device: {
      weightBytes: localCluster.weightBytes,
      kvCacheBytes: localCluster.kvCacheBytes,
      numKvBlocks: localCluster.replicas.reduce((sum, replica) => sum + replica.numKvBlocks, 0),
      blockSize: localCluster.replicas[0].blockSize,
    },
    engine: {
      get maxModelLen() {
        return engine.maxModelLen;
      },
      get stats() {
        return engine.stats;
      },
      addRequest: (request) => engine.addRequest(request),
      hasUnfinishedRequests: () => engine.hasUnfinishedRequests(),
      step: async () => {
        try {
          return await engine.step();
        } catch (error) {
          isFailed = true;
          throw error;
        }
      },
    },
    config,
    modelName: basename(resolve(modelDir)),
    layout:
      `${formatParallelConfig(cluster.parallel)} on ${cluster.numDevices} device ` +
      `worker${cluster.numDevices === 1 ? '' : 's'} ` +
      `(${numThreadsPerDevice} thread${numThreadsPerDevice === 1 ? '' : 's'} each)`,
    close: () => localCluster.close({ mode: isFailed ? 'abort' : 'drain' }),
  };
}
