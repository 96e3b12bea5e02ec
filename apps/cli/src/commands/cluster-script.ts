/**
 * Jobs on a coordinator daemon. `run --cluster` flags (readClusterJobFlags) and the engine session
 * over a RemoteJobClient that lets `run` write, resume and report exactly as for a local run; and
 * `seesaw cluster-run FILE`, which starts a coordinator and local host agents as child processes
 * from a cluster script and submits its job:
 *
 *   { "tokenFile": "token", "listen": "127.0.0.1:0",
 *     "hosts": [{ "name": "a", "devices": 1 }, { "name": "b", "devices": 1 }],
 *     "config": "D2", "threadsPerDevice": 1,
 *     "job": { "model": "models/tiny", "input": "prompts.jsonl", "output": "results.jsonl" } }
 *
 * A Seesaw job gives "prefill": "P2", "decode": "T2" and "hostKvMemory": "1GiB" (each host's KV
 * tier) instead of "config". A static job may give "hostKvMemory" too (preemption may swap
 * there), and either kind "kvDtype": "auto" | "bf16" | "f16" | "f32".
 *
 * Relative paths are relative to the script's directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { basename, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type CoordinatorHealth, RemoteJobClient, RemoteJobError } from '@seesaw/coordinator';
import { formatParallelConfig, loadModelConfig, numDevices, parseParallelConfig } from '@seesaw/model';
import {
  type FlagValues,
  optionalByteSize,
  optionalInteger,
  optionalString,
  parseFlags,
  requiredString,
  UsageError,
} from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { buildEngineConfig } from '../engine-config.ts';
import {
  type EngineSession,
  type EngineSettings,
  type SessionFigures,
  staticFigures,
} from '../engine-session.ts';
import { formatRunSummary } from '../run-summary.ts';
import { readSeesawSettings, type SeesawSettings } from '../seesaw-flags.ts';
import { readTlsCaFlag } from '../tls-flags.ts';
import { type ClusterScript, readClusterScript } from './cluster-script-file.ts';
import { readTokenFile } from './coordinator.ts';
import { runJob } from './run-job.ts';

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

/** The script's job as `run --cluster` flags would give it. */
function scriptJobSettings(script: ClusterScript, url: string, token: string): ClusterJobSettings {
  const seesaw =
    script.seesaw && readSeesawSettings({ prefill: script.seesaw.prefill, decode: script.seesaw.decode });
  const parallel = seesaw ? seesaw.prefill : parseParallelConfig(script.config!);
  const cluster: ClusterJobSettings = { url, token, parallelism: formatParallelConfig(parallel) };
  if (seesaw) cluster.seesaw = seesaw;
  if (script.threadsPerDevice !== undefined) cluster.numThreadsPerDevice = script.threadsPerDevice;
  return cluster;
}

const BIN = fileURLToPath(new URL('../../bin/seesaw.js', import.meta.url));

/** Spawns `seesaw ARGS` with stderr passed through, prefixed with `label`. */
function spawnSeesaw(args: string[], label: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (line) =>
    process.stderr.write(`[${label}] ${line}\n`),
  );
  return child;
}

/** The coordinator's URL from its first stdout line. */
async function coordinatorUrl(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`coordinator exited with code ${code} before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const match = /listening on (ws:\/\/\S+)/.exec(line);
      if (match) return match[1]!;
    }
    throw new Error('coordinator closed its output before listening');
  })();
  return Promise.race([listening, exited]);
}

/** Polls /healthz until `names` have all joined. */
async function waitForHosts(url: string, names: string[], timeoutMs: number): Promise<void> {
  const healthUrl = `${url.replace(/^ws/, 'http')}/healthz`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const health = (await (await fetch(healthUrl)).json()) as CoordinatorHealth;
      const joined = new Set(health.hosts.map((h) => h.name));
      if (names.every((name) => joined.has(name))) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline)
      throw new Error(`hosts ${names.join(', ')} did not all join within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export const CLUSTER_RUN_FLAGS = commandFlagSpec('cluster-run');

/** `seesaw cluster-run FILE`. */
export async function clusterRunCommand(argv: string[]): Promise<number> {
  const [file, ...rest] = argv;
  if (file === undefined || file.startsWith('-'))
    throw new UsageError('cluster-run needs a cluster script FILE');
  parseFlags('cluster-run', rest, CLUSTER_RUN_FLAGS);
  const script = readClusterScript(file);
  const token = readTokenFile(script.tokenFile);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const children: ChildProcess[] = [];
  try {
    const coordinator = spawnSeesaw(
      ['coordinator', '--listen', script.listen, '--token-file', script.tokenFile],
      'coordinator',
    );
    children.push(coordinator);
    const url = await coordinatorUrl(coordinator);
    log(`cluster-run: coordinator at ${url}`);
    for (const host of script.hosts) {
      const args = [
        'worker',
        '--connect',
        url,
        '--devices',
        String(host.devices),
        '--token-file',
        script.tokenFile,
      ];
      children.push(spawnSeesaw([...args, '--name', host.name], host.name));
    }
    await waitForHosts(
      url,
      script.hosts.map((h) => h.name),
      60_000,
    );
    const cluster = scriptJobSettings(script, url, token);
    const summary = await runJob({
      ...(script.seesaw ? { hostKvBytes: script.seesaw.hostKvBytes } : {}),
      ...(script.hostKvBytes !== undefined ? { hostKvBytes: script.hostKvBytes } : {}),
      ...(script.kvDtype !== undefined ? { kvDtype: script.kvDtype } : {}),
      modelDir: script.job.model,
      inputPath: script.job.input,
      outputPath: script.job.output,
      progressStream: process.stderr,
      log,
      openSession: remoteSessionOpener(cluster, script.job.output, log),
    });
    process.stdout.write(formatRunSummary(summary));
    return 0;
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}
