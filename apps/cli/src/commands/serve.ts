/**
 * `seesaw serve`: the OpenAI-compatible batch service on this machine's devices (or a job on a
 * coordinator with --cluster). Opens the default engine at start and runs queued batches in
 * order, each on the engine configuration its metadata asks for (service/engine-choice.ts); state
 * lives in SQLite under --state-dir so a restarted server picks up where the last one stopped.
 * The first stdout line names the address (tests and scripts read it).
 */

import { formatParallelConfig, numDevices } from '@seesaw/model';
import { type FlagValues, optionalString, parseFlags, requiredString, UsageError } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readSchedulerSettings } from '../engine-config.ts';
import { type EngineSession, type EngineSettings, openEngineSession } from '../engine-session.ts';
import { readHostKvSettings } from '../host-kv-flags.ts';
import { readSeesawTuning } from '../seesaw-flags.ts';
import { parseDurationMs } from '../service/completion-window.ts';
import { type EngineChoice, localSettingsFor } from '../service/engine-choice.ts';
import { startService } from '../service/service.ts';
import { readTokenFile } from '../token-file.ts';
import type { ClusterJobSettings } from './cluster-job.ts';
import { untilSignal } from './coordinator.ts';
import { readEngineSettings } from './run.ts';

export const SERVE_FLAGS = commandFlagSpec('serve');

/** HOST:PORT; port 0 picks a free one. */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text);
  const port = match === null ? Number.NaN : Number(match[2]);
  if (match === null || port > 65535)
    throw new UsageError(`${flag} must be HOST:PORT (port 0..65535), got '${text}'`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

export function readApiKey(values: FlagValues): string {
  try {
    return readTokenFile(requiredString(values, 'api-key-file'));
  } catch (error) {
    if (error instanceof UsageError)
      throw new UsageError(error.message.replace('--token-file', '--api-key-file'));
    throw error;
  }
}

/** --batch-window-override DURATION: every batch's completion window (tests, operations). */
export function readBatchWindowOverride(values: FlagValues): { batchWindowOverrideMs?: number } {
  const text = optionalString(values, 'batch-window-override');
  return text === undefined
    ? {}
    : { batchWindowOverrideMs: parseDurationMs(text, '--batch-window-override') };
}

/**
 * Where the engine runs: this machine's devices (the engine flags of `run`), or with --cluster
 * a job held on a running coordinator for as long as the server lives.
 */
async function readSessionOpener(
  values: FlagValues,
  log: (line: string) => void,
): Promise<(modelDir: string, choice: EngineChoice | null) => Promise<EngineSession>> {
  if (values.cluster === undefined) {
    if (values['token-file'] !== undefined)
      throw new UsageError('--token-file needs --cluster ws://HOST:PORT');
    const settings = readEngineSettings(values);
    return (modelDir, choice) => openEngineSession(modelDir, localSettingsFor(settings, choice));
  }
  const { readClusterJobFlags, remoteSessionOpener } = await import('./cluster-job.ts');
  const cluster = readClusterJobFlags(values);
  const settings: EngineSettings = {
    ...readSchedulerSettings(values),
    ...readHostKvSettings(values),
  };
  return (modelDir, choice) =>
    remoteSessionOpener(clusterJobFor(cluster, choice), 'seesaw serve', log)(modelDir, settings);
}

/**
 * The job a batch's engine choice asks for: seesaw_config a static layout, seesaw_prefill and
 * seesaw_decode a Seesaw pair (with the server's Seesaw tuning flags, else their defaults); no
 * choice, the server's own --config or --prefill/--decode.
 */
export function clusterJobFor(cluster: ClusterJobSettings, choice: EngineChoice | null): ClusterJobSettings {
  if (choice === null) return cluster;
  const { seesaw: _serverPair, ...job } = cluster;
  if (choice.kind === 'static') return { ...job, parallelism: formatParallelConfig(choice.parallel) };
  const tuning = cluster.seesaw ?? readSeesawTuning({});
  return {
    ...job,
    parallelism: formatParallelConfig(choice.prefill),
    seesaw: {
      ...tuning,
      prefill: choice.prefill,
      decode: choice.decode,
      numDevices: numDevices(choice.prefill),
    },
  };
}

export async function serveCommand(argv: string[]): Promise<number> {
  const values = parseFlags('serve', argv, SERVE_FLAGS);
  const modelDir = requiredString(values, 'model');
  const { host, port } = parseHostPort(requiredString(values, 'http'), '--http');
  const stateDir = requiredString(values, 'state-dir');
  const apiKey = readApiKey(values);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const openSession = await readSessionOpener(values, log);
  const service = await startService({
    modelDir,
    host,
    port,
    stateDir,
    apiKey,
    openSession: (_signal, choice) => openSession(modelDir, choice),
    openAtStart: true,
    // On a cluster a pair's job needs each host's KV tier.
    supportsSeesawPairs: values.cluster === undefined || values['host-kv-memory'] !== undefined,
    ...readBatchWindowOverride(values),
    log,
  });
  process.stdout.write(`seesaw serve listening on ${service.baseUrl}\n`);
  log(`model ${modelDir}; state in ${stateDir}`);
  await untilSignal();
  log('stopping: unfinished batches stay in the state dir for the next start');
  await service.stop();
  return 0;
}
