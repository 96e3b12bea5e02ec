/**
 * The service's engine, opened when first needed rather than when the server starts: inside a
 * coordinator daemon the engine is a job on host agents that may not have joined yet (or are
 * reconnecting after a restart), while the HTTP API must answer at once. Batches ask for the
 * engine configuration they want (their metadata, or the server's default); single requests
 * take whichever engine is open. Switching configuration waits for the open engine's requests to
 * finish, closes it and opens the other. An engine whose step failed (a host lost, a job failed)
 * is closed and a fresh one opened for the next caller.
 */
import type { EngineSession } from '../engine-session.ts';
import { type EngineChoice, engineChoiceName } from './engine-choice.ts';
import { EngineLoop } from './engine-loop.ts';

export interface ServiceEngine {
  session: EngineSession;
  engineLoop: EngineLoop;
  /** engineChoiceName of the configuration it runs. */
  choiceName: string;
}

/**
 * Opens a session for `choice` (null: the server's default); `signal` aborts when the server
 * stops while the open is still waiting.
 */
export type SessionOpener = (signal: AbortSignal, choice: EngineChoice | null) => Promise<EngineSession>;

/** Any engine that is open (single requests), else the default. */
export const ANY_ENGINE = 'any';

export class EngineProvider {
  private engine: ServiceEngine | null = null;
  /** acquire() calls run one after another, so two never open or switch engines at once. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stopping = new AbortController();

  constructor(
    private readonly open: SessionOpener,
    private readonly log: (line: string) => void,
  ) {}

  /** The open engine, if any (for gauges); never opens one. */
  get current(): ServiceEngine | null {
    return this.engine;
  }

  /** The engine for `choice`, opening it first (and closing another) when needed. */
  acquire(choice: EngineChoice | null | typeof ANY_ENGINE): Promise<ServiceEngine> {
    const next = this.queue.then(() => this.acquireNow(choice));
    this.queue = next.catch(() => {});
    return next;
  }

  /** Stops a waiting open and closes the engine (requests still running never settle). */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.queue;
    const engine = this.engine;
    this.engine = null;
    if (engine === null) return;
    await engine.engineLoop.stop();
    await engine.session.close();
  }

  private async acquireNow(choice: EngineChoice | null | typeof ANY_ENGINE): Promise<ServiceEngine> {
    if (this.stopping.signal.aborted) throw new Error('the server is stopping');
    const open = this.engine;
    if (open !== null && open.engineLoop.failure !== null) {
      this.engine = null;
      this.log(`engine failed (${open.engineLoop.failure.message}); opening a new one for what comes next`);
      await open.session.close().catch(() => {});
    } else if (open !== null && (choice === ANY_ENGINE || open.choiceName === engineChoiceName(choice))) {
      return open;
    } else if (open !== null) {
      this.engine = null;
      this.log(`engine ${open.choiceName}: waiting for its requests, then switching`);
      await open.engineLoop.idle();
      await open.engineLoop.stop();
      await open.session.close();
    }
    const wanted = choice === ANY_ENGINE ? null : choice;
    const session = await this.open(this.stopping.signal, wanted);
    if (this.stopping.signal.aborted) {
      await session.close();
      throw new Error('the server is stopping');
    }
    const choiceName = engineChoiceName(wanted);
    this.log(`engine ${choiceName} open: model ${session.modelName} on ${session.layout}`);
    this.engine = { session, engineLoop: new EngineLoop(session.engine), choiceName };
    return this.engine;
  }
}
