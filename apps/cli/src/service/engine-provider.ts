/**
 * The service's engine, opened when first needed rather than when the server starts: inside a
 * coordinator daemon the engine is a job on host agents that may not have joined yet (or are
 * reconnecting after a restart), while the HTTP API must answer at once. Batches and single
 * requests ask for it with acquire(); an engine whose step failed (a host lost, a job failed) is
 * closed and a fresh one opened for the next caller.
 */
import type { EngineSession } from '../engine-session.ts';
import { EngineLoop } from './engine-loop.ts';

export interface ServiceEngine {
  session: EngineSession;
  engineLoop: EngineLoop;
}

/** Opens a session; `signal` aborts when the server stops while the open is still waiting. */
export type SessionOpener = (signal: AbortSignal) => Promise<EngineSession>;

export class EngineProvider {
  private opening: Promise<ServiceEngine> | null = null;
  private engine: ServiceEngine | null = null;
  private readonly stopping = new AbortController();

  constructor(
    private readonly open: SessionOpener,
    private readonly log: (line: string) => void,
  ) {}

  /** The open engine, if any (for gauges); never opens one. */
  get current(): ServiceEngine | null {
    return this.engine;
  }

  /** The engine, opening it first when there is none (or the last one failed). */
  async acquire(): Promise<ServiceEngine> {
    if (this.stopping.signal.aborted) throw new Error('the server is stopping');
    if (this.engine !== null && this.engine.engineLoop.failure !== null) {
      const failed = this.engine;
      this.engine = null;
      this.log(
        `engine failed (${failed.engineLoop.failure?.message}); opening a new one for what comes next`,
      );
      await failed.session.close().catch(() => {});
    }
    if (this.engine !== null) return this.engine;
    this.opening ??= this.openEngine().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  /** Stops a waiting open and closes the engine (requests still running never settle). */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.opening?.catch(() => {});
    const engine = this.engine;
    this.engine = null;
    if (engine === null) return;
    await engine.engineLoop.stop();
    await engine.session.close();
  }

  private async openEngine(): Promise<ServiceEngine> {
    const session = await this.open(this.stopping.signal);
    if (this.stopping.signal.aborted) {
      await session.close();
      throw new Error('the server is stopping');
    }
    this.log(`engine open: model ${session.modelName} on ${session.layout}`);
    this.engine = { session, engineLoop: new EngineLoop(session.engine) };
    return this.engine;
  }
}
