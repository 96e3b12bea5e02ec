/**
 * The output record of a finished request line: each choice's text decoded, stop strings cut,
 * echo and log probabilities applied, shaped as an OpenAI batch success record.
 */
import type { RequestOutput } from '@seesaw/coordinator';
import type { SeesawTokenizer } from '@seesaw/model';
import { type BatchOutputRecord, type ChoiceResult, successRecord } from '../batch-output.ts';
import type { ParsedRequest } from '../input-lines.ts';
import { chatLogprobs, completionLogprobs, tokenTextOf } from '../logprobs-output.ts';
import { requestHash } from '../request-hash.ts';
import { cutAtStopString } from '../stop-strings.ts';

/** Output ids minus a final stop/EOS token, which (as in vLLM) is not part of the text. */
function idsForText(output: RequestOutput, stopIds: Set<number>): number[] {
  const ids = output.outputTokenIds;
  const isStopLast = output.finishReason === 'stop' && ids.length > 0 && stopIds.has(ids[ids.length - 1]);
  return isStopLast ? ids.slice(0, -1) : ids;
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
