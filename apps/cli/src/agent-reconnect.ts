/**
 * A host agent outlives its coordinator: when the control link closes, the agent (whose device
 * workers were stopped with the link) connects again with exponential back-off and jitter, so a
 * restarted coordinator gets its hosts back without anyone restarting them. A refused hello
 * (wrong token, name taken) is not retried: it would fail the same way each time.
 */
import type { HostAgent, HostAgentOptions } from '@seesaw/coordinator';
import { HandshakeError } from '@seesaw/protocol';

export const FIRST_RECONNECT_DELAY_MS = 250;
export const MAX_RECONNECT_DELAY_MS = 10_000;

/** Delay before reconnect attempt `attempt` (0-based): doubling, capped, with +-25% jitter. */
export function reconnectDelayMs(attempt: number, random = Math.random): number {
  const base = Math.min(MAX_RECONNECT_DELAY_MS, FIRST_RECONNECT_DELAY_MS * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/**
 * Keeps an agent joined until `stop` resolves: returns the signal name when stopped, or throws
 * when a reconnect was refused.
 */
export async function runAgentWithReconnect(
  first: HostAgent,
  start: (options: HostAgentOptions) => Promise<HostAgent>,
  options: HostAgentOptions,
  stop: Promise<string>,
  log: (line: string) => void,
): Promise<string> {
  let agent = first;
  let stopped: string | undefined;
  void stop.then((signal) => {
    stopped = signal;
  });
  for (;;) {
    const outcome = await Promise.race([
      agent.closed.then((reason) => ({ reason })),
      stop.then((signal) => ({ signal })),
    ]);
    if ('signal' in outcome) {
      await agent.close(`agent stopped by ${outcome.signal}`);
      return outcome.signal;
    }
    log(`agent ${options.hostName}: coordinator link closed: ${outcome.reason}; reconnecting`);
    for (let attempt = 0; ; attempt++) {
      const delayMs = reconnectDelayMs(attempt);
      const signal = await Promise.race([
        new Promise<undefined>((resolve) => setTimeout(resolve, delayMs)),
        stop,
      ]);
      if (signal !== undefined || stopped !== undefined) return signal ?? stopped!;
      try {
        agent = await start(options);
        break;
      } catch (error) {
        if (error instanceof HandshakeError && error.isRefused) throw error;
        log(
          `agent ${options.hostName}: reconnect attempt ${attempt + 1} failed: ${(error as Error).message}`,
        );
      }
    }
  }
}
