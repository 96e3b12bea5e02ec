/**
 * The OpenAI-compatible service, started by `seesaw serve` (engine on this machine's devices or a
 * job on a coordinator) and by `seesaw coordinator --http` (a job on the daemon's own host
 * agents): the state store, the engine provider, the batch runner and the HTTP API, listening on
 * HOST:PORT. One module for both, so the two commands serve exactly the same API.
 */
import { basename, resolve } from 'node:path';
import { SeesawTokenizer } from '@seesaw/model';
import type { TlsServerCredentials } from '@seesaw/protocol';
import { chatPrompterFor } from '../chat-template.ts';
import { BatchRunner } from './batch-runner.ts';
import { EngineProvider, type SessionOpener } from './engine-provider.ts';
import { HttpApi } from './http-api.ts';
import { nowSeconds, StateStore } from './state-store.ts';

export interface ServiceOptions {
  modelDir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  stateDir: string;
  apiKey: string;
  /** Serve HTTPS with this certificate (coordinator --http with --tls-cert/--tls-key). */
  tls?: TlsServerCredentials;
  /** Opens the engine when the first batch or request needs it. */
  openSession: SessionOpener;
  /** Open the engine before listening (a local engine: its errors stop the start). */
  openAtStart?: boolean;
  /** Every batch's completion window instead of the one it names (--batch-window-override). */
  batchWindowOverrideMs?: number;
  /** Whether batches may ask for Seesaw pairs (local device workers, or a cluster with host KV tiers). */
  supportsSeesawPairs: boolean;
  log: (line: string) => void;
}

export interface RunningService {
  /** http://HOST:PORT/v1 (https:// with tls), the baseURL of an OpenAI client. */
  baseUrl: string;
  /** Stops listening and the engine; unfinished batches stay in the state dir. */
  stop(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { modelDir, log } = options;
  const store = new StateStore(options.stateDir);
  const tokenizer = SeesawTokenizer.load(modelDir);
  const chat = chatPrompterFor(modelDir, tokenizer);
  const engines = new EngineProvider(options.openSession, log);
  if (options.openAtStart === true) {
    try {
      await engines.acquire(null);
    } catch (error) {
      store.close();
      throw error;
    }
  }
  const runner = new BatchRunner({
    store,
    engines,
    tokenizer,
    chat,
    log,
    supportsSeesawPairs: options.supportsSeesawPairs,
  });
  const api = new HttpApi({
    store,
    runner,
    modelName: basename(resolve(modelDir)),
    apiKeys: [options.apiKey],
    startedSeconds: nowSeconds(),
    supportsSeesawPairs: options.supportsSeesawPairs,
    ...(options.batchWindowOverrideMs === undefined
      ? {}
      : { batchWindowOverrideMs: options.batchWindowOverrideMs }),
    completions: { engines, tokenizer, chat },
    ...(options.tls ? { tls: options.tls } : {}),
  });
  await new Promise<void>((resolveListen, reject) => {
    api.server.once('error', reject);
    api.server.listen(options.port, options.host, () => resolveListen());
  });
  const address = api.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : options.port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    baseUrl: `${options.tls ? 'https' : 'http'}://${shownHost}:${boundPort}/v1`,
    stop: async () => {
      const closed = new Promise<void>((resolveClose) => api.server.close(() => resolveClose()));
      api.server.closeAllConnections();
      await closed;
      await runner.stop();
      await engines.close();
      store.close();
    },
  };
}
