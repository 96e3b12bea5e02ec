/**
 * `seesaw run`: prompts JSONL in, OpenAI batch output JSONL out, streamed as requests finish,
 * resumable by custom_id. This file reads the command's flags (engine settings, paths, trace
 * outputs) and hands the job to runJob (run-job.ts), which the default job goes through too.
 */

import { resolve } from 'node:path';
import { TraceRecorder } from '@seesaw/coordinator';
import {
  type FlagValues,
  optionalByteSize,
  optionalInteger,
  parseFlags,
  requiredString,
  UsageError,
} from '../args.ts';
import { checkWebGpuPlacement, readBackendSettings } from '../backend-flags.ts';
import { type ClusterSettings, readClusterSettings } from '../cluster-flags.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readSchedulerSettings } from '../engine-config.ts';
import type { EngineSettings } from '../engine-session.ts';
import { kvDtypeForBackend, readHostKvSettings } from '../host-kv-flags.ts';
import { checkMemoryFlags } from '../memory-flags.ts';
import { formatRunSummary, runSummaryGrid } from '../run-summary.ts';
import { readSeesawSettings } from '../seesaw-flags.ts';
import { isTraceWanted, readTraceOutputs, writeTraceOutputs } from '../trace-output.ts';
import { type RunJobOptions, runJob, STDIO_PATH } from './run-job.ts';

export const RUN_FLAGS = commandFlagSpec('run');

export function readEngineSettings(values: FlagValues): EngineSettings {
  // Seesaw first: it owns --devices/--device-memory when --prefill is given and refuses the
  // static knobs it replaces with a message naming its own flags.
  const seesaw = readSeesawSettings(values);
  const settings: EngineSettings = {
    numThreads: optionalInteger(values, 'threads', { min: 1, max: 1024 }),
    kvCacheBytes: optionalByteSize(values, 'kv-cache-memory'),
    ...readSchedulerSettings(values),
    cluster: seesaw ? undefined : readClusterSettings(values),
    ...readHostKvSettings(values),
  };
  checkMemoryFlags(settings);
  if (seesaw) settings.seesaw = seesaw;
  const { backend, gpusPerAdapter } = readBackendSettings(values);
  const kvDtype = kvDtypeForBackend(settings.kvDtype, backend);
  if (kvDtype !== undefined) settings.kvDtype = kvDtype;
  if (backend === 'webgpu') {
    settings.backend = backend;
    if (seesaw) checkWebGpuPlacement(seesaw.numDevices, gpusPerAdapter);
    else settings.cluster = webGpuCluster(settings, gpusPerAdapter);
  }
  return settings;
}

/**
 * The local cluster a WebGPU run goes through (device workers even for one device: the GPU
 * backend lives in the device worker), refusing a placement the GPU backend cannot make yet.
 */
function webGpuCluster(settings: EngineSettings, gpusPerAdapter: number): ClusterSettings {
  const cluster = settings.cluster ?? { numDevices: 1, parallel: { dp: 1, tp: 1, pp: 1 } };
  checkWebGpuPlacement(cluster.numDevices, gpusPerAdapter);
  return cluster;
}

function checkInputOutputPaths(options: RunJobOptions): void {
  const isStdio = options.inputPath === STDIO_PATH || options.outputPath === STDIO_PATH;
  if (!isStdio && resolve(options.inputPath) === resolve(options.outputPath)) {
    throw new UsageError('--output must not be the --input file');
  }
}

/** With `--output -` the records own stdout, so the summary goes to stderr with the logs. */
function summaryStream(options: RunJobOptions): NodeJS.WriteStream {
  return options.outputPath === STDIO_PATH ? process.stderr : process.stdout;
}

export async function runCommand(argv: string[]): Promise<number> {
  const values = parseFlags('run', argv, RUN_FLAGS);
  if (values.cluster !== undefined) return runOnClusterCommand(values);
  if (values['token-file'] !== undefined) throw new UsageError('--token-file needs --cluster ws://HOST:PORT');
  if (values['tls-ca'] !== undefined) throw new UsageError('--tls-ca needs --cluster wss://HOST:PORT');
  const options: RunJobOptions = {
    modelDir: requiredString(values, 'model'),
    inputPath: requiredString(values, 'input'),
    outputPath: requiredString(values, 'output'),
    ...readEngineSettings(values),
    progressStream: process.stderr,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  checkInputOutputPaths(options);
  const traceOutputs = readTraceOutputs(values);
  if (isTraceWanted(traceOutputs)) options.recorder = new TraceRecorder();
  const summary = await runJob(options);
  summaryStream(options).write(formatRunSummary(summary));
  if (options.recorder) {
    const label = summary.layout ?? 'run';
    const written = writeTraceOutputs(traceOutputs, [{ name: label, events: options.recorder.events }], {
      title: `seesaw run on ${label}`,
      subtitle: `${options.modelDir}: ${options.inputPath} -> ${options.outputPath}`,
      table: runSummaryGrid(summary),
    });
    for (const line of written) options.log(line);
  }
  return 0;
}

/** `run --cluster ws://HOST:PORT --token-file F --config DxTyPz ...`: the job runs on a coordinator daemon. */
async function runOnClusterCommand(values: FlagValues): Promise<number> {
  for (const name of ['trace', 'report']) {
    if (values[name] !== undefined)
      throw new UsageError(`--${name} runs on local device workers, not with --cluster`);
  }
  const { readClusterJobFlags, remoteSessionOpener } = await import('./cluster-job.ts');
  const cluster = readClusterJobFlags(values);
  const outputPath = requiredString(values, 'output');
  const options: RunJobOptions = {
    modelDir: requiredString(values, 'model'),
    inputPath: requiredString(values, 'input'),
    outputPath,
    ...readSchedulerSettings(values),
    ...readHostKvSettings(values),
    progressStream: process.stderr,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  checkInputOutputPaths(options);
  options.openSession = remoteSessionOpener(cluster, outputPath, options.log);
  const summary = await runJob(options);
  summaryStream(options).write(formatRunSummary(summary));
  return 0;
}
