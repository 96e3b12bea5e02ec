/**
 * An engine session over a LocalCluster: one device worker per device of the --config layout,
 * the --threads split evenly over them (at least one each), a ClusterEngine in front. Lost
 * devices are worked around (RecoveringCluster): a lost replica's requests go to the others, and
 * with no replica left the run is re-planned onto the healthy devices; each event is logged to
 * stderr. When nothing valid is left, step() throws ClusterStoppedError. With --host-kv-memory
 * one kv-store worker is the host's KV tier, split evenly over the dp * pp engines, so preemption
 * may swap (--preemption auto or swap) instead of recomputing.
 */

import { randomBytes } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { RecoveringCluster } from '@seesaw/coordinator';
import { Checkpoint, expectedTensors, loadModelConfig, parseParallelConfig } from '@seesaw/model';
import type { EngineConfig } from '@seesaw/protocol';
import { deviceWorkerUrlOf } from './backend-flags.ts';
import { deviceMemoryOf } from './engine-config.ts';
import { type EngineSession, type EngineSettings, staticFigures } from './engine-session.ts';

/** Parameters of the model, from the tensor shapes its config implies (for the swap cost model). */
function numModelParams(modelDir: string): number {
  return expectedTensors(loadModelConfig(modelDir)).reduce(
    (sum, tensor) => sum + tensor.shape.reduce((a, b) => a * b, 1),
    0,
  );
}

/** `settings` gives what is not configuration: the backend and the trace recorder. */
export async function openClusterSession(
  engineConfig: EngineConfig,
  settings: Pick<EngineSettings, 'backend' | 'recorder'>,
): Promise<EngineSession> {
  // Loaded here for the same reason as in openEngineSession: native kernels only when needed.
  const { createDeviceWorkerGroup } = await import('@seesaw/gpu-actor');
  const { model, parallel: parallelConfig, cache, scheduler } = engineConfig;
  const modelDir = model.dir;
  const parallel = parseParallelConfig(parallelConfig.layout);
  const backend = settings.backend ?? 'cpu';
  const numThreadsPerDevice = parallelConfig.numThreadsPerDevice ?? 1;
  const weightBytes = Checkpoint.tensorBytesOf(modelDir);
  // --kv-cache-memory reaches a cluster only as a WebGPU run's one implied device (run.ts refuses it otherwise).
  const deviceMemoryBytes = deviceMemoryOf(engineConfig, weightBytes);
  const recovering = await RecoveringCluster.start({
    cluster: {
      workerUrl: await deviceWorkerUrlOf(backend),
      modelDir,
      parallel,
      numThreadsPerDevice,
      deviceMemoryBytes,
      token: randomBytes(24).toString('base64url'),
      createTpGroup: createDeviceWorkerGroup,
      hostKvBytes: cache.hostKvBytes,
      ...(cache.kvDtype !== undefined ? { kvDtype: cache.kvDtype } : {}),
    },
    // hostKv itself comes from the cluster (each engine's share of the store), re-plans included.
    engine: {
      maxNumBatchedTokens: scheduler.maxNumBatchedTokens,
      maxNumSeqs: scheduler.maxNumSeqs,
      preemptionMode: cache.preemptionMode,
      numModelParams: numModelParams(modelDir),
      trace: settings.recorder,
    },
    // A re-plan must not put more of the weights on one device than its memory holds.
    minDevicesPerReplica: Math.ceil(weightBytes / deviceMemoryBytes),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const localCluster = recovering.cluster;
  const config = recovering.config;
  let isFailed = false;
  return {
    device: {
      weightBytes: localCluster.weightBytes,
      kvCacheBytes: localCluster.kvCacheBytes,
      numKvBlocks: localCluster.replicas.reduce((sum, replica) => sum + replica.numKvBlocks, 0),
      blockSize: localCluster.replicas[0].blockSize,
      kvDtype: localCluster.kvDtype,
    },
    engine: {
      get maxModelLen() {
        return recovering.maxModelLen;
      },
      get stats() {
        return recovering.stats;
      },
      addRequest: (request) => recovering.addRequest(request),
      hasUnfinishedRequests: () => recovering.hasUnfinishedRequests(),
      step: async () => {
        try {
          return await recovering.step();
        } catch (error) {
          isFailed = true;
          throw error;
        }
      },
    },
    config,
    modelName: basename(resolve(modelDir)),
    layout:
      `${parallelConfig.layout} on ${parallelConfig.numDevices} device ` +
      `worker${parallelConfig.numDevices === 1 ? '' : 's'} ` +
      (backend === 'webgpu'
        ? '(WebGPU)'
        : `(${numThreadsPerDevice} thread${numThreadsPerDevice === 1 ? '' : 's'} each)`),
    figures: () => {
      // Per device: a replica's weights and KV cache over its tp * pp devices (TP ranks hold equal
      // shares; PP stages differ by the embedding and head, which this mean smooths over).
      const current = recovering.cluster;
      const perReplica = current.parallel.tp * current.parallel.pp;
      const peak = Math.max(...current.replicas.map((r) => (r.weightBytes + r.kvCacheBytes) / perReplica));
      const numEngines = current.parallel.dp * current.parallel.pp;
      return staticFigures(recovering.stats, Math.round(peak), cache.hostKvBytes, numEngines);
    },
    close: () => recovering.close({ mode: isFailed ? 'abort' : 'drain' }),
  };
}
