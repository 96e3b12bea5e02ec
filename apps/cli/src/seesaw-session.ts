/**
 * An engine session the Seesaw way: a phased LocalCluster (prefill layout, decode layout, the
 * same device workers in both) with one two-layout ReplicaDevice per DP replica and a
 * SeesawClusterEngine in front, which runs prefill and decode in separate phases and re-shards
 * the workers between them. The host KV tier is required (prefill parks every sequence's KV
 * there): --host-kv-memory, or 25% of the free RAM at most 4 GiB.
 *
 * A lost device drops its replica: its unfinished requests start over from their prompts on the
 * other replicas (ReplicaCluster's recovery, as a static cluster's). With no replica left the
 * run is re-planned onto the healthy devices (RecoveringSeesawCluster: a pair that fits them,
 * else a static layout), each event logged to stderr; when nothing fits the run fails and the
 * output written so far is kept.
 */

import { randomBytes } from 'node:crypto';
import { freemem } from 'node:os';
import { basename, resolve } from 'node:path';
import { chooseHostWeightCache, measureReshardLinkRates, RecoveringSeesawCluster } from '@seesaw/coordinator';
import { Checkpoint, loadModelConfig, parseParallelConfig } from '@seesaw/model';
import { ENGINE_DEFAULTS, type EngineConfig } from '@seesaw/protocol';
import { deviceWorkerUrlOf } from './backend-flags.ts';
import { formatByteSize } from './byte-size.ts';
import type { EngineSession, EngineSettings, SessionFigures } from './engine-session.ts';
import { PeakDeviceMemory, watchPeakMemory } from './phased-memory-watch.ts';
import { defaultSeesawHostKvBytes } from './seesaw-flags.ts';

/** `settings` gives what is not configuration: the backend and the trace recorder. */
export async function openSeesawSession(
  engineConfig: EngineConfig,
  settings: Pick<EngineSettings, 'backend' | 'recorder'>,
): Promise<EngineSession> {
  // Loaded here, as in openClusterSession: native kernels only when an engine really starts.
  const { createDeviceWorkerGroup } = await import('@seesaw/gpu-actor');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const { model, parallel, cache, scheduler } = engineConfig;
  const modelDir = model.dir;
  if (parallel.decodeLayout === undefined) throw new Error('a Seesaw session needs a decode layout');
  const prefill = parseParallelConfig(parallel.layout);
  const decode = parseParallelConfig(parallel.decodeLayout);
  const reshardRoute = parallel.reshardRoute ?? 'auto';
  const numThreadsPerDevice = parallel.numThreadsPerDevice ?? 1;
  const weightBytes = Checkpoint.tensorBytesOf(modelDir);
  const config = loadModelConfig(modelDir);
  // A Seesaw device holds the weights of its bigger shard: not the --kv-cache-memory of one device.
  const deviceMemoryBytes = cache.deviceMemoryBytes ?? weightBytes + ENGINE_DEFAULTS.kvCacheBytes;
  const hostKvBytes = cache.hostKvBytes ?? defaultSeesawHostKvBytes();
  if (cache.hostKvBytes === undefined) {
    log(
      `seesaw: host KV tier ${formatByteSize(hostKvBytes)} (25% of free RAM, at most 4 GiB; set --host-kv-memory)`,
    );
  }
  // 'auto' picks each weight piece's source from the link rates: this machine's, measured now
  // (about 0.2 s), not defaults that may be off by 5x either way.
  const cacheChoice = chooseHostWeightCache(parallel.hostWeightCache, weightBytes * prefill.dp, freemem());
  if (cacheChoice.why) log(`seesaw: ${cacheChoice.why}`);
  const hostWeightCache = cacheChoice.isOn;
  // Each device worker logs the host memory its cache takes (about 2x its shard).
  const reshardRates =
    reshardRoute === 'auto' ? await measureReshardLinkRates(modelDir, { hostWeightCache }) : undefined;
  if (reshardRates) {
    const gbps = (bytesPerSecond: number) => (bytesPerSecond / 1e9).toFixed(2);
    log(
      `seesaw: re-shard links measured: peer-to-peer ${gbps(reshardRates.p2pBytesPerSecond)} GB/s, ` +
        `host ${gbps(reshardRates.hostBytesPerSecond)} GB/s`,
    );
  }
  const perReplica = prefill.tp * prefill.pp;
  // One watcher set per cluster the run starts (a re-plan starts another); the peak is over all.
  const peaks: PeakDeviceMemory[] = [];
  const recovering = await RecoveringSeesawCluster.start({
    cluster: {
      workerUrl: await deviceWorkerUrlOf(settings.backend ?? 'cpu'),
      modelDir,
      parallel: prefill,
      decodeParallel: decode,
      reshardRoute,
      hostWeightCache,
      reshardRates,
      numThreadsPerDevice,
      deviceMemoryBytes,
      token: randomBytes(24).toString('base64url'),
      createTpGroup: createDeviceWorkerGroup,
      hostKvBytes,
      ...(cache.kvDtype !== undefined ? { kvDtype: cache.kvDtype } : {}),
      log,
    },
    engine: {
      maxModelLen: config.maxPositionEmbeddings,
      eosTokenIds: config.eosTokenIds,
      maxNumBatchedTokens: scheduler.prefillTokenBudget,
      maxNumSeqs: scheduler.maxNumSeqs,
      watermark: scheduler.watermark,
      hostLowMark: scheduler.hostLowMark,
      trace: settings.recorder,
      log,
    },
    staticMaxNumBatchedTokens: scheduler.maxNumBatchedTokens,
    // A re-plan must not put more of the weights on one device than its memory holds.
    minDevicesPerReplica: Math.ceil(weightBytes / deviceMemoryBytes),
    wrapReplicas: (replicas) =>
      replicas.map((replica) => {
        const peak = new PeakDeviceMemory(perReplica, replica);
        peaks.push(peak);
        return watchPeakMemory(replica, peak);
      }),
    log,
  });
  const cluster = recovering.cluster;
  // The engine's times are summed over its DP replicas, which run at the same time: per replica.
  const { dp } = prefill;
  const figures = (): SessionFigures => {
    const stats = recovering.stats;
    return {
      numSwitches: stats.numSwitches,
      prefillMs: stats.prefillMs / dp,
      decodeMs: stats.decodeMs / dp,
      reshardMs: stats.reshardMs / dp,
      kvWaitMs: stats.kvWaitMs / dp,
      prefetchMs: stats.prefetchMs,
      prefetchWaitMs: stats.prefetchWaitMs,
      prefetchesNeeded: stats.prefetchesNeeded,
      prefetchesLanded: stats.prefetchesLanded,
      prefetchBytesNeeded: stats.prefetchBytesNeeded,
      prefetchBytesLanded: stats.prefetchBytesLanded,
      peakDeviceMemoryBytes: Math.max(0, ...peaks.map((peak) => peak.bytes)),
      hostKvBytes,
    };
  };
  const replicas = cluster.phasedReplicas;
  return {
    device: {
      weightBytes: replicas.reduce((sum, replica) => sum + replica.weightBytes, 0),
      kvCacheBytes: replicas.reduce((sum, replica) => sum + replica.kvCacheBytes, 0),
      numKvBlocks: replicas.reduce((sum, replica) => sum + replica.numKvBlocks, 0),
      blockSize: replicas[0].blockSize,
      kvDtype: cluster.kvDtype,
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
      step: () => recovering.step(),
    },
    config: cluster.config,
    modelName: basename(resolve(modelDir)),
    layout:
      `prefill ${parallel.layout}, decode ${parallel.decodeLayout} on ` +
      `${parallel.numDevices} device worker${parallel.numDevices === 1 ? '' : 's'} ` +
      `(${numThreadsPerDevice} thread${numThreadsPerDevice === 1 ? '' : 's'} each)`,
    figures,
    close: () => recovering.close(),
  };
}
