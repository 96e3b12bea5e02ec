/**
 * How a request asks for log probabilities, as OpenAI's two APIs spell it:
 * - completions: `logprobs: N`, N in 0..5 alternatives per position (null: none);
 * - chat: `logprobs: true` with `top_logprobs: N`, N in 0..20 (top_logprobs needs logprobs).
 * Both become SamplingParams.numLogprobs; absent means none are computed.
 */
import { describeValue, type LineProblems } from './line-problems.ts';
import type { RequestEndpoint } from './request-fields.ts';

/** OpenAI's limits: completions' logprobs, chat's top_logprobs. */
export const MAX_COMPLETIONS_LOGPROBS = 5;
export const MAX_CHAT_TOP_LOGPROBS = 20;

const isAbsent = (value: unknown) => value === undefined || value === null;

function readCount(value: unknown, name: string, max: number, problems: LineProblems): number | undefined {
  if (Number.isInteger(value) && (value as number) >= 0 && (value as number) <= max) return value as number;
  problems.add(`${name} must be an integer in [0, ${max}], got ${describeValue(value)}`);
  return undefined;
}

/** The number of alternatives the request asks for, or undefined when it asks for none. */
export function readNumLogprobs(
  object: Record<string, unknown>,
  endpoint: RequestEndpoint,
  problems: LineProblems,
): number | undefined {
  const { logprobs, top_logprobs: topLogprobs } = object;
  if (endpoint === 'completions') {
    if (!isAbsent(topLogprobs) && topLogprobs !== 0) {
      problems.add(
        `top_logprobs: ${describeValue(topLogprobs)} is for chat requests; completions ask with logprobs: N (0 to ${MAX_COMPLETIONS_LOGPROBS})`,
      );
    }
    // false is what some clients send for "none".
    if (isAbsent(logprobs) || logprobs === false) return undefined;
    return readCount(logprobs, 'logprobs', MAX_COMPLETIONS_LOGPROBS, problems);
  }
  if (!isAbsent(logprobs) && typeof logprobs !== 'boolean') {
    problems.add(`logprobs must be true or false in a chat request, got ${describeValue(logprobs)}`);
    return undefined;
  }
  if (logprobs !== true) {
    if (!isAbsent(topLogprobs) && topLogprobs !== 0) problems.add('top_logprobs needs logprobs: true');
    return undefined;
  }
  return isAbsent(topLogprobs) ? 0 : readCount(topLogprobs, 'top_logprobs', MAX_CHAT_TOP_LOGPROBS, problems);
}
