/**
 * `seesaw serve`: the OpenAI-compatible batch service on this machine's devices. Loads the
 * model once, holds one engine session, and runs queued batches on it in order; state lives
 * in SQLite under --state-dir so a restarted server picks up where the last one stopped.
 * The first stdout line names the address (tests and scripts read it).
 */

import { SeesawTokenizer } from '@seesaw/model';
import { type FlagValues, optionalInteger, parseFlags, requiredString, UsageError } from '../args.ts';
import { chatPrompterFor } from '../chat-template.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { type EngineSession, type EngineSettings, openEngineSession } from '../engine-session.ts';
import { readHostKvSettings } from '../host-kv-flags.ts';
import { BatchRunner } from '../service/batch-runner.ts';
import { EngineLoop } from '../service/engine-loop.ts';
import { HttpApi } from '../service/http-api.ts';
import { nowSeconds, StateStore } from '../service/state-store.ts';
import { readTokenFile } from '../token-file.ts';
import { readEngineSettings } from './run.ts';

export const SERVE_FLAGS = commandFlagSpec('serve');

/** HOST:PORT; port 0 picks a free one. */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text);
  const port = match === null ? Number.NaN : Number(match[2]);
  if (match === null || port > 65535)
    throw new UsageError(`${flag} must be HOST:PORT (port 0..65535), got '${text}'`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

function readApiKey(values: FlagValues): string {
  try {
    return readTokenFile(requiredString(values, 'api-key-file'));
  } catch (error) {
    if (error instanceof UsageError)
      throw new UsageError(error.message.replace('--token-file', '--api-key-file'));
    throw error;
  }
}

/**
 * Where the engine runs: this machine's devices (the engine flags of `run`), or with --cluster
 * a job held on a running coordinator for as long as the server lives.
 */
async function readSessionOpener(
  values: FlagValues,
  log: (line: string) => void,
): Promise<(modelDir: string) => Promise<EngineSession>> {
  if (values.cluster === undefined) {
    if (values['token-file'] !== undefined)
      throw new UsageError('--token-file needs --cluster ws://HOST:PORT');
    const settings = readEngineSettings(values);
    return (modelDir) => openEngineSession(modelDir, settings);
  }
  for (const name of ['prefill', 'decode']) {
    if (values[name] !== undefined)
      throw new UsageError(`--${name} runs on local device workers, not with --cluster`);
  }
  const { readClusterJobFlags, remoteSessionOpener } = await import('./cluster-script.ts');
  const open = remoteSessionOpener(readClusterJobFlags(values), 'seesaw serve', log);
  const settings: EngineSettings = {
    maxNumBatchedTokens: optionalInteger(values, 'max-num-batched-tokens', { min: 1 }),
    maxNumSeqs: optionalInteger(values, 'max-num-seqs', { min: 1 }),
    ...readHostKvSettings(values),
  };
  return (modelDir) => open(modelDir, settings);
}

export async function serveCommand(argv: string[]): Promise<number> {
  const values = parseFlags('serve', argv, SERVE_FLAGS);
  const modelDir = requiredString(values, 'model');
  const { host, port } = parseHostPort(requiredString(values, 'http'), '--http');
  const stateDir = requiredString(values, 'state-dir');
  const apiKey = readApiKey(values);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const openSession = await readSessionOpener(values, log);

  const store = new StateStore(stateDir);
  const session = await openSession(modelDir);
  const tokenizer = SeesawTokenizer.load(modelDir);
  const engineLoop = new EngineLoop(session.engine);
  const chat = chatPrompterFor(modelDir, tokenizer);
  const runner = new BatchRunner({ store, session, engineLoop, tokenizer, chat, log });
  const api = new HttpApi({
    store,
    runner,
    modelName: session.modelName,
    apiKeys: [apiKey],
    startedSeconds: nowSeconds(),
    completions: { session, engineLoop, tokenizer, chat },
  });
  await new Promise<void>((resolve, reject) => {
    api.server.once('error', reject);
    api.server.listen(port, host, () => resolve());
  });
  const address = api.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`seesaw serve listening on http://${shownHost}:${boundPort}/v1\n`);
  log(`model ${session.modelName} on ${session.layout}; state in ${stateDir}`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log('stopping: unfinished batches stay in the state dir for the next start');
  const closed = new Promise<void>((resolve) => api.server.close(() => resolve()));
  api.server.closeAllConnections();
  await closed;
  await runner.stop();
  await engineLoop.stop();
  await session.close();
  store.close();
  return 0;
}
