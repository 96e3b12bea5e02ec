/**
 * Jobs on a coordinator daemon: `run --cluster` flags (readClusterJobFlags) and the engine session
 * over a RemoteJobClient that lets `run` write, resume and report exactly as for a local run.
 * `seesaw serve` and `seesaw cluster-run` open their jobs the same way.
 */
import { basename, resolve } from 'node:path';
import { RemoteJobClient, RemoteJobError } from '@seesaw/coordinator';
import { formatParallelConfig, loadModelConfig, numDevices, parseParallelConfig } from '@seesaw/model';
import {
  type FlagValues,
  optionalByteSize,
  optionalInteger,
  optionalString,
  requiredString,
  UsageError,
} from '../args.ts';
import { buildEngineConfig } from '../engine-config.ts';
import {
  type EngineSession,
  type EngineSettings,
  type SessionFigures,
  staticFigures,
} from '../engine-session.ts';
import { readSeesawSettings, type SeesawSettings } from '../seesaw-flags.ts';
import { readTlsCaFlag } from '../tls-flags.ts';
import { readTokenFile } from './coordinator.ts';

function optionalTlsCa(tlsCa: Buffer | undefined): { tlsCa?: Buffer } {
  return tlsCa ? { tlsCa } : {};
}

export interface ClusterJobSettings {
  /** ws://HOST:PORT of the coordinator daemon. */
  url: string;
  token: string;
  /** CA (PEM) that the wss:// coordinator's certificate must chain to (--tls-ca). */
  tlsCa?: Buffer;
  /** 'D2', 'D2T2'... */
  parallelism: string;
  numThreadsPerDevice?: number;
  deviceMemoryBytes?: number;
  /** A Seesaw job (--prefill X --decode Y): parallelism is its prefill layout. */
  seesaw?: SeesawSettings;
}

/** --config, required for a static job on a cluster. */
function readClusterConfig(values: FlagValues): ReturnType<typeof parseParallelConfig> {
  const configText = optionalString(values, 'config');
  if (configText === undefined) {
    throw new UsageError(
      '--cluster needs --config DxTyPz (e.g. --config D2), or --prefill X --decode Y for Seesaw',
    );
  }
  try {
    return parseParallelConfig(configText);
  } catch (error) {
    throw new UsageError(`--config: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function readClusterJobFlags(values: FlagValues): ClusterJobSettings {
  const url = requiredString(values, 'cluster');
  if (!/^wss?:\/\//.test(url)) throw new UsageError(`--cluster must be ws://HOST:PORT, got '${url}'`);
  if (values['kv-cache-memory'] !== undefined) {
    throw new UsageError('--kv-cache-memory does not apply to a cluster: use --device-memory');
  }
  // Seesaw first: it refuses --config and the static knobs it replaces, naming its own flags.
  const seesaw = readSeesawSettings(values);
  if (seesaw && values['host-kv-memory'] === undefined) {
    throw new UsageError(
      "--prefill/--decode with --cluster need --host-kv-memory SIZE: each host's KV tier, where prefill parks every sequence",
    );
  }
  const parallel = seesaw?.prefill ?? readClusterConfig(values);
  const needed = numDevices(parallel);
  const numDeviceFlag = optionalInteger(values, 'devices', { min: 1, max: 4096 });
  if (numDeviceFlag !== undefined && numDeviceFlag !== needed) {
    throw new UsageError(
      `--devices ${numDeviceFlag} does not match --config ${formatParallelConfig(parallel)} (${needed} devices)`,
    );
  }
  const threads = optionalInteger(values, 'threads', { min: 1, max: 1024 });
  const settings: ClusterJobSettings = {
    url,
    token: readTokenFile(requiredString(values, 'token-file')),
    ...optionalTlsCa(readTlsCaFlag(values, url)),
    parallelism: formatParallelConfig(parallel),
  };
  if (seesaw) settings.seesaw = seesaw;
  // --threads is the job's total, split over its devices like a local cluster.
  if (threads !== undefined) settings.numThreadsPerDevice = Math.max(1, Math.floor(threads / needed));
  const deviceMemoryBytes = optionalByteSize(values, 'device-memory');
  if (deviceMemoryBytes !== undefined) settings.deviceMemoryBytes = deviceMemoryBytes;
  return settings;
}

/** An openSession for runJob: the engine is a job on the coordinator daemon. */
export function remoteSessionOpener(
  cluster: ClusterJobSettings,
  outputPath: string,
  log: (line: string) => void,
): (modelDir: string, settings: EngineSettings) => Promise<EngineSession> {
  return async (modelDir, settings) => {
    const config = loadModelConfig(modelDir);
    const job = await RemoteJobClient.open({
      url: cluster.url,
      token: cluster.token,
      ...(cluster.tlsCa ? { tlsCa: cluster.tlsCa } : {}),
      name: `job client (${basename(outputPath)})`,
      log,
      // The job runs with exactly the configuration built here from this client's flags.
      job: {
        config: buildEngineConfig(
          modelDir,
          cluster.seesaw ? { ...settings, seesaw: cluster.seesaw } : settings,
          {
            parallelism: parseParallelConfig(cluster.parallelism),
            numThreadsPerDevice: cluster.numThreadsPerDevice,
            deviceMemoryBytes: cluster.deviceMemoryBytes,
          },
        ),
      },
    });
    const { ready } = job;
    return {
      device: {
        weightBytes: ready.weightBytes,
        kvCacheBytes: ready.kvCacheBytes,
        numKvBlocks: ready.numKvBlocks,
        blockSize: ready.blockSize,
        ...(ready.kvDtype ? { kvDtype: ready.kvDtype } : {}),
      },
      engine: {
        get maxModelLen() {
          return job.maxModelLen;
        },
        get stats() {
          return job.stats;
        },
        addRequest: (request) => job.addRequest(request),
        hasUnfinishedRequests: () => job.hasUnfinishedRequests(),
        takeRejections: () => job.takeRejections(),
        step: async () => {
          try {
            return await job.step();
          } catch (error) {
            if (!(error instanceof RemoteJobError)) throw error;
            throw new Error(
              `${error.message}\nresults completed before the failure are kept in ${outputPath}; ` +
                'run again with the same --output to finish the rest',
            );
          }
        },
      },
      config,
      modelName: basename(resolve(modelDir)),
      layout: `cluster ${cluster.url}: ${ready.layout}`,
      figures: () => {
        const parallel = parseParallelConfig(cluster.parallelism);
        // The job reports totals over its devices; the per-device mean stands for the peak.
        const perDevice = Math.round((ready.weightBytes + ready.kvCacheBytes) / numDevices(parallel));
        if (cluster.seesaw)
          return seesawJobFigures(job.stats, perDevice, settings.hostKvBytes ?? 0, parallel.dp);
        return staticFigures(job.stats, perDevice, settings.hostKvBytes, parallel.dp * parallel.pp);
      },
      close: () => job.close(),
    };
  };
}

/**
 * A Seesaw job's figures from the counters it reports (SeesawEngineStats summed over its dp
 * replicas, which run at the same time: times per replica, as a local Seesaw session's).
 */
function seesawJobFigures(
  stats: object,
  peakDeviceMemoryBytes: number,
  hostKvBytes: number,
  dp: number,
): SessionFigures {
  const count = (name: string) => (stats as Record<string, number | undefined>)[name] ?? 0;
  return {
    numSwitches: count('numSwitches'),
    prefillMs: count('prefillMs') / dp,
    decodeMs: count('decodeMs') / dp,
    reshardMs: count('reshardMs') / dp,
    kvWaitMs: count('kvWaitMs') / dp,
    prefetchMs: count('prefetchMs'),
    prefetchWaitMs: count('prefetchWaitMs'),
    prefetchesNeeded: count('prefetchesNeeded'),
    prefetchesLanded: count('prefetchesLanded'),
    prefetchBytesNeeded: count('prefetchBytesNeeded'),
    prefetchBytesLanded: count('prefetchBytesLanded'),
    peakDeviceMemoryBytes,
    hostKvBytes,
  };
}
