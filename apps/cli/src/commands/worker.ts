/**
 * `seesaw worker --connect ws://HOST:PORT --devices N --token-file F [--name HOST]
 * [--peer-listen HOST:PORT|off] [--backend cpu|webgpu [--gpus-per-adapter K]] [--tls-ca F]
 * [--tls-cert F --tls-key F]`: the host agent.
 * With wss://, --tls-ca verifies the coordinator and peer agents; --tls-cert/--tls-key make the
 * peer-link listener TLS only. Joins the coordinator and runs the device
 * workers it places here until the coordinator goes away (exit 1) or the agent gets SIGINT/SIGTERM
 * (exit 0). --peer-listen is where other agents link to this host's devices when a replica spans
 * hosts (default: the interface used to reach the coordinator, any free port; ':PORT' listens on
 * all interfaces and advertises that one; 'off' takes only whole replicas).
 */
import { hostname } from 'node:os';
import { HostAgent } from '@seesaw/coordinator';
import { runAgentWithReconnect } from '../agent-reconnect.ts';
import { optionalInteger, optionalString, parseFlags, requiredString, UsageError } from '../args.ts';
import { checkWebGpuPlacement, deviceWorkerUrlOf, readBackendSettings } from '../backend-flags.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { readTlsCaFlag, readTlsServerFlags } from '../tls-flags.ts';
import { parseListenAddress, readTokenFile, untilSignal } from './coordinator.ts';

export const WORKER_FLAGS = commandFlagSpec('worker');

export async function workerCommand(argv: string[]): Promise<number> {
  const values = parseFlags('worker', argv, WORKER_FLAGS);
  const coordinatorUrl = requiredString(values, 'connect');
  if (!/^wss?:\/\//.test(coordinatorUrl))
    throw new UsageError(`--connect must be ws://HOST:PORT or wss://HOST:PORT, got '${coordinatorUrl}'`);
  const tlsCa = readTlsCaFlag(values, coordinatorUrl);
  const tlsServer = readTlsServerFlags(values);
  const numDevices = optionalInteger(values, 'devices', { min: 1, max: 4096 }) ?? 1;
  const { backend, gpusPerAdapter } = readBackendSettings(values);
  if (backend === 'webgpu') checkWebGpuPlacement(numDevices, gpusPerAdapter);
  const token = readTokenFile(requiredString(values, 'token-file'));
  const hostName = optionalString(values, 'name') ?? hostname();
  if (!/^[A-Za-z0-9._-]{1,256}$/.test(hostName)) {
    throw new UsageError(`--name may use letters, digits, '.', '_' and '-' only, got '${hostName}'`);
  }
  const peerListenText = optionalString(values, 'peer-listen');
  const peerListen =
    peerListenText === undefined
      ? undefined
      : peerListenText === 'off'
        ? (false as const)
        : parsePeerListen(peerListenText);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // Loaded here: the native kernels are needed by the device workers only.
  const { createDeviceWorkerGroup } = await import('@seesaw/gpu-actor');
  const agentOptions = {
    coordinatorUrl,
    token,
    hostName,
    numDevices,
    // The backend is the device worker entry; a WebGPU device refuses TP/PP shards when loaded.
    workerUrl: await deviceWorkerUrlOf(backend),
    createTpGroup: createDeviceWorkerGroup,
    log,
    ...(peerListen === undefined ? {} : { peerListen }),
    ...(tlsCa || tlsServer ? { tls: { ca: tlsCa, ...tlsServer } } : {}),
  };
  // The first start fails fast (bad address, wrong token); later losses are reconnected.
  const agent = await HostAgent.start(agentOptions);
  const stop = untilSignal();
  const signal = await runAgentWithReconnect(agent, (o) => HostAgent.start(o), agentOptions, stop, log);
  log(`agent ${hostName}: ${signal}, stopping`);
  // A link closed for silence still waits for the peer's close frame (ws: 30 s); do not linger on it.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}

function parsePeerListen(text: string): { host: string; port: number } {
  try {
    return parseListenAddress(text);
  } catch {
    throw new UsageError(`--peer-listen must be HOST:PORT, :PORT or off, got '${text}'`);
  }
}
