/**
 * The engine side of a `seesaw run` job: every parsed line queued on one engine session (a choice
 * per engine request), each line's record written as its choices finish, progress reported.
 */
import type { SeesawTokenizer } from '@seesaw/model';
import { errorRecord } from '../batch-output.ts';
import { formatByteSize } from '../byte-size.ts';
import { drainEngine, openEngineSession, tryAddRequest } from '../engine-session.ts';
import type { ParsedRequest } from '../input-lines.ts';
import { ProgressReporter } from '../progress.ts';
import { ChoiceGather, choiceIndexOf, choiceRequestsOf } from '../request-choices.ts';
import type { RunSummary } from '../run-summary.ts';
import { stopWhenOfRequest } from '../stop-strings.ts';
import { outputRecordOfChoices } from './output-record.ts';
import type { RecordSink } from './record-sink.ts';
import type { RunJobOptions } from './run-job.ts';

export async function runRequests(
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
