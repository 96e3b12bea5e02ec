/**
 * A stable id of what a request asks for (prompt token ids, sampling settings, returned fields),
 * written as the output record's `request_id`: resume keeps a completed record only when the
 * input line with its custom_id still asks for the same thing, and re-runs it otherwise.
 */
import { createHash } from 'node:crypto';
import type { ParsedRequest } from './input-lines.ts';

export function requestHash(request: ParsedRequest): string {
  const canonical = JSON.stringify({
    prompt: request.promptTokenIds,
    sampling: Object.fromEntries(Object.entries(request.sampling).sort(([a], [b]) => (a < b ? -1 : 1))),
    isTokenIdsReturned: request.isTokenIdsReturned,
    // Only when set, so completions requests keep the ids they had before chat existed.
    ...(request.isChat ? { isChat: true } : {}),
    ...(request.stopStrings.length > 0 ? { stopStrings: request.stopStrings } : {}),
    ...(request.prompts.length > 1 ? { prompts: request.prompts } : {}),
    ...(request.n > 1 ? { n: request.n } : {}),
    ...(request.isEchoed ? { isEchoed: true } : {}),
  });
  return `req_${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
}
