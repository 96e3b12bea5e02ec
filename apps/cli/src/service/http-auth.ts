/** The API key check every route of the HTTP API sits behind: `Authorization: Bearer <api key>`. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './http-errors.ts';

/** An API key as kept and compared: its sha256 (equal lengths, as timingSafeEqual needs). */
export function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function checkBearer(request: IncomingMessage, apiKeys: Buffer[]): void {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer (.+)$/.exec(header);
  // Compared as digests in constant time, so timing tells nothing about the key.
  const given = match === null ? null : digest(match[1].trim());
  if (given === null || !apiKeys.some((key) => timingSafeEqual(key, given))) {
    throw new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key>', 'invalid_api_key');
  }
}
