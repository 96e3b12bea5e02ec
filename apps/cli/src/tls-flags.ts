/**
 * --tls-cert, --tls-key and --tls-ca: PEM files for wss:// links. A listener (coordinator, an
 * agent's peer links) takes a certificate and its key together; a client (agent, job client)
 * takes the CA that signed the server's certificate. Unreadable or non-PEM files, and a key
 * file others can read (as ssh refuses such private keys), are refused here, before any
 * connection.
 */
import { readFileSync, statSync } from 'node:fs';
import { type FlagValues, optionalString, UsageError } from './args.ts';

function readPem(values: FlagValues, flag: string, label: RegExp): Buffer | undefined {
  const path = optionalString(values, flag);
  if (path === undefined) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new UsageError(`--${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!label.test(pem.toString('latin1')))
    throw new UsageError(`--${flag} ${path}: not a PEM file of the right kind`);
  return pem;
}

/** The listener's certificate and key, or undefined for a plain ws:// listener. */
export function readTlsServerFlags(values: FlagValues): { cert: Buffer; key: Buffer } | undefined {
  const cert = readPem(values, 'tls-cert', /-----BEGIN CERTIFICATE-----/);
  const key = readPem(values, 'tls-key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  const keyPath = optionalString(values, 'tls-key');
  // Windows has no POSIX modes; there the check cannot say anything.
  if (keyPath !== undefined && process.platform !== 'win32') {
    const mode = statSync(keyPath).mode;
    if ((mode & 0o077) !== 0) {
      throw new UsageError(
        `--tls-key: ${keyPath} is readable or writable by group/other (mode ${(mode & 0o777).toString(8)}); ` +
          `run 'chmod 600 ${keyPath}'`,
      );
    }
  }
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  return cert && key ? { cert, key } : undefined;
}

/** The CA a client verifies a wss:// server against; only with a wss:// URL. */
export function readTlsCaFlag(values: FlagValues, url: string): Buffer | undefined {
  const ca = readPem(values, 'tls-ca', /-----BEGIN CERTIFICATE-----/);
  if (ca !== undefined && !url.startsWith('wss://')) {
    throw new UsageError(`--tls-ca needs a wss:// address, got '${url}'`);
  }
  return ca;
}
