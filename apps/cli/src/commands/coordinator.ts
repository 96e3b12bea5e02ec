/**
 * `seesaw coordinator --listen HOST:PORT --token-file F [--tls-cert F --tls-key F]`: the
 * many-machines daemon. One port serves /healthz, /metrics and the WebSocket every agent and job
 * client connects to (HTTPS and wss:// only, with a certificate). The first
 * stdout line names the bound address (port 0 picks one), so scripts can read it.
 */
import { CoordinatorDaemon } from '@seesaw/coordinator';
import { parseFlags, parseIntegerText, requiredString, UsageError } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readDaemonServiceFlags, startDaemonService } from '../service/daemon-service.ts';
import { readTlsServerFlags } from '../tls-flags.ts';
import { readTokenFile } from '../token-file.ts';

export const COORDINATOR_FLAGS = commandFlagSpec('coordinator');

export { readTokenFile } from '../token-file.ts';

/** 'HOST:PORT', '[v6]:PORT' or ':PORT' (all interfaces). */
export function parseListenAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim());
  if (!match) throw new UsageError(`--listen must be HOST:PORT, got '${text}'`);
  const host = match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]!);
  return { host, port: parseIntegerText(match[3]!, '--listen port', { min: 0, max: 65535 }) };
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export async function coordinatorCommand(argv: string[]): Promise<number> {
  const values = parseFlags('coordinator', argv, COORDINATOR_FLAGS);
  const { host, port } = parseListenAddress(requiredString(values, 'listen'));
  const token = readTokenFile(requiredString(values, 'token-file'));
  const tls = readTlsServerFlags(values);
  const serviceSettings = readDaemonServiceFlags(values);
  // With a certificate the service's API is HTTPS too, and its job link wss://.
  if (serviceSettings !== null && tls) serviceSettings.tls = tls;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const daemon = await CoordinatorDaemon.start({ host, port, token, log, ...(tls ? { tls } : {}) });
  process.stdout.write(`seesaw coordinator listening on ${daemon.url} (HTTP /healthz, /metrics)\n`);
  const service =
    serviceSettings === null ? null : await startDaemonService(daemon, token, serviceSettings, log);
  if (service !== null) process.stdout.write(`seesaw coordinator service listening on ${service.baseUrl}\n`);
  const signal = await untilSignal();
  log(`coordinator: ${signal}, stopping`);
  await service?.stop();
  await daemon.close();
  return 0;
}
