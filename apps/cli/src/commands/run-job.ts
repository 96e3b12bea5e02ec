/**
 * One `seesaw run` job: prompts JSONL in, OpenAI batch output JSONL out, streamed as requests
 * finish, resumable by custom_id. The `run` command and the default job both go through runJob.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ClusterStoppedError } from '@seesaw/coordinator';
import { Checkpoint, SeesawTokenizer } from '@seesaw/model';
import { errorRecord } from '../batch-output.ts';
import { chatPrompterFor } from '../chat-template.ts';
import type { EngineSession, EngineSettings } from '../engine-session.ts';
import { type ParsedRequest, parseInputFile } from '../input-lines.ts';
import type { ProgressStream } from '../progress.ts';
import { requestHash } from '../request-hash.ts';
import { prepareOutputForResume, type ResumeState } from '../resume.ts';
import type { RunSummary } from '../run-summary.ts';
import { RecordFileWriter, stdoutRecordSink } from './record-sink.ts';
import { runRequests } from './run-requests.ts';

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

/** `--input -` / `--output -`: stdin and stdout instead of files. */
export const STDIO_PATH = '-';

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
