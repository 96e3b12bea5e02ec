/** Reading an HTTP API request's body (JSON or a multipart upload), capped at MAX_UPLOAD_BYTES. */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './http-errors.ts';

const MAX_UPLOAD_BYTES = 200 * 1024 * 1024;

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request) {
    total += (chunk as Buffer).length;
    if (total > MAX_UPLOAD_BYTES) throw new ApiError(413, `request body over ${MAX_UPLOAD_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readBody(request)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `request body is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** Parses a multipart upload with the fetch API's own form-data parser. */
export async function readForm(request: IncomingMessage): Promise<FormData> {
  const contentType = request.headers['content-type'] ?? '';
  if (!contentType.startsWith('multipart/form-data')) {
    throw new ApiError(400, `expected a multipart/form-data upload, got content-type '${contentType}'`);
  }
  const body = await readBody(request);
  try {
    return await new Response(new Uint8Array(body), { headers: { 'content-type': contentType } }).formData();
  } catch (error) {
    throw new ApiError(400, `unreadable multipart body: ${(error as Error).message}`);
  }
}
