/**
 * `seesaw run`: prompts JSONL in, OpenAI batch output JSONL out, streamed as requests finish,
 * resumable by custom_id. The default job goes through runJob too.
 */

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ClusterStoppedError, type RequestOutput, TraceRecorder } from '@seesaw/coordinator';
import { Checkpoint, SeesawTokenizer } from '@seesaw/model';
import {
  type FlagValues,
  optionalByteSize,
  optionalInteger,
  parseFlags,
  requiredString,
  UsageError,
} from '../args.ts';
import { checkWebGpuPlacement, readBackendSettings } from '../backend-flags.ts';
import {
  type BatchOutputRecord,
  type ChoiceResult,
  errorRecord,
  formatRecordLine,
  successRecord,
} from '../batch-output.ts';
import { formatByteSize } from '../byte-size.ts';
import { chatPrompterFor } from '../chat-template.ts';
import { type ClusterSettings, readClusterSettings } from '../cluster-flags.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readSchedulerSettings } from '../engine-config.ts';
import {
  drainEngine,
  type EngineSession,
  type EngineSettings,
  openEngineSession,
  tryAddRequest,
} from '../engine-session.ts';
import { kvDtypeForBackend, readHostKvSettings } from '../host-kv-flags.ts';
import { type ParsedRequest, parseInputFile } from '../input-lines.ts';
import { chatLogprobs, completionLogprobs, tokenTextOf } from '../logprobs-output.ts';
import { checkMemoryFlags } from '../memory-flags.ts';
import { ProgressReporter, type ProgressStream } from '../progress.ts';
import { ChoiceGather, choiceIndexOf, choiceRequestsOf } from '../request-choices.ts';
import { requestHash } from '../request-hash.ts';
import { prepareOutputForResume, type ResumeState } from '../resume.ts';
import { formatRunSummary, type RunSummary, runSummaryGrid } from '../run-summary.ts';
import { readSeesawSettings } from '../seesaw-flags.ts';
import { cutAtStopString, stopWhenOfRequest } from '../stop-strings.ts';
import { isTraceWanted, readTraceOutputs, writeTraceOutputs } from '../trace-output.ts';

export interface RunJobOptions extends EngineSettings {
  modelDir: string;
  inputPath: string;
  outputPath: string;
  /** Where progress goes (a TTY gets the live bar). */
  progressStream: ProgressStream;
  /** Where notices go (skipped count, dropped records). */
  log: (line: string) => void;
  /** Opens the engine the requests run on; default openEngineSession (in this process). */
  openSession?: (modelDir: string, settings: EngineSettings) => Promise<EngineSession>;
}

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

/** `--input -` / `--output -`: stdin and stdout instead of files. */
export const STDIO_PATH = '-';

/** Where records go: appended one write at a time, so each finished request is out at once. */
interface RecordSink {
  write(record: BatchOutputRecord): void;
  close(): void;
}

class RecordFileWriter implements RecordSink {
  private readonly fd: number;
  constructor(path: string) {
    this.fd = openSync(path, 'a');
  }
  write(record: BatchOutputRecord): void {
    writeSync(this.fd, formatRecordLine(record));
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** stdout through Node's stream (synchronous for files and pipes on Linux); it stays open. */
const stdoutRecordSink: RecordSink = {
  write: (record) => void process.stdout.write(formatRecordLine(record)),
  close: () => {},
};

/** Output ids minus a final stop/EOS token, which (as in vLLM) is not part of the text. */
function idsForText(output: RequestOutput, stopIds: Set<number>): number[] {
  const ids = output.outputTokenIds;
  const isStopLast = output.finishReason === 'stop' && ids.length > 0 && stopIds.has(ids[ids.length - 1]);
  return isStopLast ? ids.slice(0, -1) : ids;
}

function describeResume(summary: RunSummary, resume: ResumeState): string {
  const dropped = [
    `re-evaluating ${resume.numDroppedErrorRecords} previous error records`,
    resume.numDroppedCorruptLines > 0 ? `dropped ${resume.numDroppedCorruptLines} unreadable lines` : '',
    resume.numDroppedChangedRecords > 0
      ? `re-running ${resume.numDroppedChangedRecords} requests whose input changed`
      : '',
    resume.numDroppedDuplicateRecords > 0
      ? `dropped ${resume.numDroppedDuplicateRecords} repeated records`
      : '',
  ].filter((part) => part !== '');
  return `resuming ${summary.outputPath}: skipped ${summary.numSkipped} requests already completed, ${dropped.join(', ')}`;
}

/** One finished choice as its record shows it: stop strings cut, echo and log probabilities applied. */
function choiceResultOf(
  output: RequestOutput,
  request: ParsedRequest,
  promptIndex: number,
  tokenizer: SeesawTokenizer | null,
  eosIds: number[],
): ChoiceResult {
  const stopIds = new Set<number>(request.sampling.ignoreEos ? [] : eosIds);
  for (const id of request.sampling.stopTokenIds) stopIds.add(id);
  let outputTokenIds = output.outputTokenIds;
  let text = tokenizer === null ? '' : tokenizer.decode(idsForText(output, stopIds));
  let finishReason = output.finishReason;
  const cut =
    tokenizer === null
      ? null
      : cutAtStopString(outputTokenIds, text, request.stopStrings, (ids) => tokenizer.decode(ids));
  if (cut !== null) {
    outputTokenIds = outputTokenIds.slice(0, cut.numIds);
    text = cut.text;
    finishReason = 'stop';
  }
  if (request.isEchoed) {
    const promptText =
      request.promptTexts[promptIndex] ?? tokenizer?.decode(request.prompts[promptIndex]) ?? '';
    text = promptText + text;
  }
  const tokenText = tokenTextOf(tokenizer === null ? null : (ids) => tokenizer.decode(ids));
  const logprobs =
    output.outputLogprobs === undefined
      ? undefined
      : request.isChat
        ? chatLogprobs(outputTokenIds, output.outputLogprobs, tokenText)
        : completionLogprobs(outputTokenIds, output.outputLogprobs, tokenText);
  return { outputTokenIds, text, finishReason, ...(logprobs ? { logprobs } : {}) };
}

/** The record of a line whose choices all finished (outputs in choice order, request-choices.ts). */
export function outputRecordOfChoices(
  outputs: RequestOutput[],
  request: ParsedRequest,
  tokenizer: SeesawTokenizer | null,
  modelName: string,
  eosIds: number[],
): BatchOutputRecord {
  const [first, ...more] = outputs.map((output, index) =>
    choiceResultOf(output, request, Math.floor(index / request.n), tokenizer, eosIds),
  );
  return successRecord({
    customId: request.customId,
    modelName,
    promptTokenIds: request.promptTokenIds,
    ...first,
    ...(more.length > 0 ? { moreChoices: more } : {}),
    ...(request.prompts.length > 1
      ? { numPromptTokens: request.prompts.reduce((sum, prompt) => sum + prompt.length, 0) }
      : {}),
    // Without a tokenizer the text is empty, so the ids are the only result.
    isTokenIdsReturned: request.isTokenIdsReturned || tokenizer === null,
    isChat: request.isChat,
    createdSeconds: Math.floor(Date.now() / 1000),
    requestId: requestHash(request),
  });
}

/** The record of a single-choice line. */
export function outputRecord(
  output: RequestOutput,
  request: ParsedRequest,
  tokenizer: SeesawTokenizer | null,
  modelName: string,
  eosIds: number[],
): BatchOutputRecord {
  return outputRecordOfChoices([output], request, tokenizer, modelName, eosIds);
}

export async function runJob(options: RunJobOptions): Promise<RunSummary> {
  const startMs = performance.now();
  const isStdin = options.inputPath === STDIO_PATH;
  const isStdout = options.outputPath === STDIO_PATH;
  if (!isStdin && !existsSync(options.inputPath))
    throw new Error(`input file not found: ${options.inputPath}`);
  if (!isStdout && existsSync(options.outputPath) && statSync(options.outputPath).isDirectory()) {
    throw new Error(`output path is a directory: ${options.outputPath}`);
  }
  // Opening reads the safetensors headers only: missing weights, or a config.json that does not
  // match them, fail here with one error instead of as one error per input line.
  const checkpoint = Checkpoint.open(options.modelDir);
  checkpoint.close();
  const config = checkpoint.config;
  const tokenizer = SeesawTokenizer.load(options.modelDir);
  // fd 0 when reading stdin: readFileSync reads it to its end.
  const input = readFileSync(isStdin ? 0 : options.inputPath, 'utf8');
  const lineResults = parseInputFile(input, {
    vocabSize: config.vocabSize,
    maxModelLen: config.maxPositionEmbeddings,
    tokenizer,
    chat: chatPrompterFor(options.modelDir, tokenizer),
  });

  if (!isStdout) mkdirSync(dirname(resolve(options.outputPath)), { recursive: true });
  const expectedRequestIds = new Map<string, string>();
  for (const result of lineResults) {
    if (result.isOk) expectedRequestIds.set(result.request.customId, requestHash(result.request));
  }
  // stdout has nothing to resume from: prepareOutputForResume of a missing file is the empty state.
  const resume = prepareOutputForResume(isStdout ? '' : options.outputPath, expectedRequestIds);
  const summary: RunSummary = {
    numOk: 0,
    numErrors: 0,
    numSkipped: 0,
    numPromptTokens: 0,
    numOutputTokens: 0,
    elapsedMs: 0,
    engineElapsedMs: 0,
    outputPath: options.outputPath,
  };
  const writer = isStdout ? stdoutRecordSink : new RecordFileWriter(options.outputPath);
  try {
    const toRun: ParsedRequest[] = [];
    for (const result of lineResults) {
      if (!result.isOk) {
        writer.write(errorRecord(result.error.customId, result.error.code, result.error.message));
        summary.numErrors++;
      } else if (resume.completedCustomIds.has(result.request.customId)) {
        summary.numSkipped++;
      } else {
        toRun.push(result.request);
      }
    }
    if (resume.completedCustomIds.size > 0 || resume.isRewritten)
      options.log(describeResume(summary, resume));
    if (toRun.length > 0) {
      await runRequests(options, toRun, tokenizer, writer, summary).catch((error: unknown) => {
        // Lost devices that could not be worked around: say where what did finish is.
        if (!(error instanceof ClusterStoppedError)) throw error;
        throw error.withPartialOutput(options.outputPath, summary.numOk + summary.numSkipped);
      });
    }
  } finally {
    writer.close();
  }
  summary.elapsedMs = performance.now() - startMs;
  return summary;
}

async function runRequests(
  options: RunJobOptions,
  requests: ParsedRequest[],
  tokenizer: SeesawTokenizer | null,
  writer: RecordSink,
  summary: RunSummary,
): Promise<void> {
  const session = await (options.openSession ?? openEngineSession)(options.modelDir, options);
  try {
    const { device } = session;
    options.log(
      `model ${session.modelName} on ${session.layout}: weights ${formatByteSize(device.weightBytes)}, KV cache ` +
        `${formatByteSize(device.kvCacheBytes)} (${device.numKvBlocks} blocks of ${device.blockSize} tokens` +
        `${device.kvDtype ? `, ${device.kvDtype}` : ''}); ` +
        `${requests.length} requests to run`,
    );
    const engineStartMs = performance.now();
    // Every choice is its own engine request (request-choices.ts); a line's record is written once
    // all its choices finish, or once with the error of the first one refused.
    const lines = new Map<string, { request: ParsedRequest; gather: ChoiceGather; isFailed: boolean }>();
    const lineOfEngineId = new Map<string, ParsedRequest>();
    const takenIds = new Set(requests.map((request) => request.customId));
    let numQueued = 0;
    for (const request of requests) {
      // Stop strings end generation early on this engine (the cut below gives the same answer).
      const stopWhen = stopWhenOfRequest(request, tokenizer);
      const choices = choiceRequestsOf(request, request.customId, { stopWhen });
      const collision = choices.find(
        (choice) => choice.requestId !== request.customId && takenIds.has(choice.requestId),
      );
      let rejection: string | null = null;
      if (collision !== undefined) {
        rejection = `its choice id '${collision.requestId}' is another line's custom_id: rename one of them`;
      } else {
        for (const choice of choices) {
          rejection = tryAddRequest(session.engine, choice);
          if (rejection !== null) break;
          lineOfEngineId.set(choice.requestId, request);
          numQueued++;
        }
      }
      // A line refused after some of its choices were queued: those run, and are dropped.
      lines.set(request.customId, {
        request,
        gather: new ChoiceGather(choices.length),
        isFailed: rejection !== null,
      });
      if (rejection !== null) {
        writer.write(
          errorRecord(request.customId, 'request_rejected', `line ${request.lineNumber}: ${rejection}`),
        );
        summary.numErrors++;
      }
    }
    const lineOf = (requestId: string) => {
      const request = lineOfEngineId.get(requestId);
      if (request === undefined) throw new Error(`engine answered unknown request '${requestId}'`);
      return lines.get(request.customId)!;
    };
    const eosIds = session.config.eosTokenIds;
    // Most output tokens each choice can get: its max_tokens, or up to the length cap.
    const outputBudget = (promptTokenIds: number[], request: ParsedRequest) =>
      Math.min(request.sampling.maxTokens, session.engine.maxModelLen - promptTokenIds.length);
    let numWorkTotal = 0;
    for (const { request, isFailed } of lines.values())
      if (!isFailed)
        for (const prompt of request.prompts)
          numWorkTotal += (prompt.length + outputBudget(prompt, request)) * request.n;
    const progress = new ProgressReporter(options.progressStream, numQueued);
    try {
      await drainEngine(
        session.engine,
        (output) => {
          const line = lineOf(output.requestId);
          if (line.isFailed) return;
          numWorkTotal -= Math.max(
            0,
            outputBudget(output.promptTokenIds, line.request) - output.outputTokenIds.length,
          );
          summary.numPromptTokens += output.promptTokenIds.length;
          summary.numOutputTokens += output.outputTokenIds.length;
          const outputs = line.gather.add(choiceIndexOf(output.requestId, line.request.customId), output);
          if (outputs === null) return;
          writer.write(outputRecordOfChoices(outputs, line.request, tokenizer, session.modelName, eosIds));
          summary.numOk++;
        },
        (stats) =>
          progress.update({
            numDone: stats.numFinished,
            numOutputTokens: stats.numOutputTokens,
            numWorkDone: stats.numPromptTokensComputed + stats.numOutputTokens,
            numWorkTotal,
          }),
        (requestId, message) => {
          const line = lineOf(requestId);
          const prompt =
            line.request.prompts[
              Math.floor(choiceIndexOf(requestId, line.request.customId) / line.request.n)
            ];
          numWorkTotal -= prompt.length + outputBudget(prompt, line.request);
          if (line.isFailed) return;
          line.isFailed = true;
          writer.write(
            errorRecord(
              line.request.customId,
              'request_rejected',
              `line ${line.request.lineNumber}: ${message}`,
            ),
          );
          summary.numErrors++;
        },
      );
    } finally {
      progress.finish();
    }
    summary.engineElapsedMs = performance.now() - engineStartMs;
    summary.figures = session.figures();
    summary.layout = session.layout;
    if (session.device.kvDtype) summary.kvDtype = session.device.kvDtype;
  } finally {
    await session.close();
  }
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
  const { readClusterJobFlags, remoteSessionOpener } = await import('./cluster-script.ts');
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
