/**
 * `seesaw coordinator --http`: the OpenAI-compatible service inside the coordinator daemon. Its
 * engine is a job on the daemon's own host agents, opened through the daemon's WebSocket as any
 * job client's would be (the same placement, relays and failure handling), once enough devices
 * are free: after a restart the agents reconnect on their own, and the batches left in the state
 * dir continue as soon as they are back.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoordinatorDaemon } from '@seesaw/coordinator';
import { formatParallelConfig, numDevices, parseParallelConfig } from '@seesaw/model';
import type { TlsServerCredentials } from '@seesaw/protocol';
import {
  type FlagValues,
  optionalByteSize,
  optionalInteger,
  optionalString,
  requiredString,
  UsageError,
} from '../args.ts';
import { DAEMON_SERVICE_FLAG_GROUP } from '../command-flags.ts';
import { type ClusterJobSettings, remoteSessionOpener } from '../commands/cluster-job.ts';
import { clusterJobFor, parseHostPort, readApiKey, readBatchWindowOverride } from '../commands/serve.ts';
import { readSchedulerSettings } from '../engine-config.ts';
import type { EngineSession, EngineSettings } from '../engine-session.ts';
import { readHostKvSettings } from '../host-kv-flags.ts';
import type { EngineChoice } from './engine-choice.ts';
import { type RunningService, startService } from './service.ts';

/** How often a waiting engine open looks at the joined hosts again. */
const HOST_POLL_MS = 250;

export interface DaemonServiceSettings {
  host: string;
  port: number;
  stateDir: string;
  apiKey: string;
  modelDir: string;
  /** The layout of the job batches run on (--config; D1 when absent). */
  parallelism: string;
  numThreadsPerDevice?: number;
  deviceMemoryBytes?: number;
  engine: EngineSettings;
  batchWindowOverrideMs?: number;
  /** The coordinator's --tls-cert/--tls-key: the API is HTTPS and the service's job link wss://. */
  tls?: TlsServerCredentials;
}

/** The service flags, or null without --http (then none of them may be given). */
export function readDaemonServiceFlags(values: FlagValues): DaemonServiceSettings | null {
  if (values.http === undefined) {
    const given = DAEMON_SERVICE_FLAG_GROUP.flags
      .map((flag) => flag.name)
      .filter((name) => values[name] !== undefined);
    if (given.length > 0) throw new UsageError(`--${given[0]} needs --http HOST:PORT (the service API)`);
    return null;
  }
  const { host, port } = parseHostPort(requiredString(values, 'http'), '--http');
  let parallel: ReturnType<typeof parseParallelConfig>;
  try {
    parallel = parseParallelConfig(optionalString(values, 'config') ?? 'D1');
  } catch (error) {
    throw new UsageError(`--config: ${error instanceof Error ? error.message : String(error)}`);
  }
  const threads = optionalInteger(values, 'threads', { min: 1, max: 1024 });
  const deviceMemoryBytes = optionalByteSize(values, 'device-memory');
  return {
    host,
    port,
    stateDir: requiredString(values, 'state-dir'),
    apiKey: readApiKey(values),
    modelDir: requiredString(values, 'model'),
    parallelism: formatParallelConfig(parallel),
    // --threads is the job's total, split over its devices as for run --cluster.
    ...(threads === undefined
      ? {}
      : { numThreadsPerDevice: Math.max(1, Math.floor(threads / numDevices(parallel))) }),
    ...(deviceMemoryBytes === undefined ? {} : { deviceMemoryBytes }),
    ...readBatchWindowOverride(values),
    engine: {
      ...readSchedulerSettings(values),
      ...readHostKvSettings(values),
    },
  };
}

/** Free devices over the joined hosts. */
function freeDevices(daemon: CoordinatorDaemon): number {
  return daemon.health().hosts.reduce((sum, host) => sum + host.devices - host.busyDevices, 0);
}

/** The daemon's URL as a job client in this process dials it (a wildcard bind via loopback). */
function selfUrl(daemon: CoordinatorDaemon): string {
  return daemon.url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

export async function startDaemonService(
  daemon: CoordinatorDaemon,
  token: string,
  settings: DaemonServiceSettings,
  log: (line: string) => void,
): Promise<RunningService> {
  const cluster: ClusterJobSettings = {
    url: selfUrl(daemon),
    token,
    parallelism: settings.parallelism,
    ...(settings.numThreadsPerDevice === undefined
      ? {}
      : { numThreadsPerDevice: settings.numThreadsPerDevice }),
    ...(settings.deviceMemoryBytes === undefined ? {} : { deviceMemoryBytes: settings.deviceMemoryBytes }),
    // The job link dials this process's own wss:// listener: its certificate is the one to trust.
    ...(settings.tls ? { tlsCa: Buffer.from(settings.tls.cert) } : {}),
  };
  const openSession = async (signal: AbortSignal, choice: EngineChoice | null): Promise<EngineSession> => {
    // A batch's seesaw_config is the job's layout; a pair (seesaw_prefill/seesaw_decode) a Seesaw
    // job on the same devices, with the service's host KV tier.
    const job = clusterJobFor(cluster, choice);
    const { parallelism } = job;
    const needed = numDevices(parseParallelConfig(parallelism));
    let hasLogged = false;
    while (freeDevices(daemon) < needed) {
      if (!hasLogged) log(`service: waiting for ${needed} free device(s) to run ${parallelism}`);
      hasLogged = true;
      await sleep(HOST_POLL_MS, undefined, { signal });
    }
    const open = remoteSessionOpener(job, 'the service state dir', log);
    return open(settings.modelDir, settings.engine);
  };
  return startService({
    modelDir: settings.modelDir,
    host: settings.host,
    port: settings.port,
    stateDir: settings.stateDir,
    apiKey: settings.apiKey,
    openSession,
    // A pair's job needs each host's KV tier (batches asking for one are refused without it).
    supportsSeesawPairs: settings.engine.hostKvBytes !== undefined,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.batchWindowOverrideMs === undefined
      ? {}
      : { batchWindowOverrideMs: settings.batchWindowOverrideMs }),
    log,
  });
}
