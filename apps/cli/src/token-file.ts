/**
 * The cluster token file: read strictly (as ssh treats private keys) and created safely.
 * The token is the only thing that authenticates agents and job clients, so a file others can
 * read, or a token short enough to guess, is refused with an error saying how to fix it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { UsageError } from './args.ts';

/** Shortest token accepted, in bytes (256 bits of a random hex token is 64). */
export const MIN_TOKEN_BYTES = 32;

/** The cluster secret: the file's content without surrounding whitespace. */
export function readTokenFile(path: string): string {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--token-file: cannot read ${path}: ${(error as Error).message}`);
  }
  // Windows has no POSIX modes; there the check cannot say anything.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new UsageError(
      `--token-file: ${path} is readable or writable by group/other (mode ${(mode & 0o777).toString(8)}); ` +
        `run 'chmod 600 ${path}' (or make a new one with 'seesaw token --out ${path}')`,
    );
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`--token-file: ${path} is empty`);
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes < MIN_TOKEN_BYTES) {
    throw new UsageError(
      `--token-file: ${path} holds a ${bytes}-byte token; at least ${MIN_TOKEN_BYTES} bytes are needed ` +
        `(make one with 'seesaw token --out FILE')`,
    );
  }
  return token;
}

/** Writes a new random token (32 random bytes as hex) with mode 0600; refuses to overwrite. */
export function writeNewTokenFile(path: string): void {
  const token = randomBytes(32).toString('hex');
  try {
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw new UsageError(`token --out: cannot create ${path}: ${(error as Error).message}`);
  }
}
