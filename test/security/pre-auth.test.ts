/**
 * Issue 13 items 1, 4, 5, 6 (slow-down), 7 and 8 against a real coordinator daemon and a real
 * agent peer-link listener over loopback WebSockets: what an unauthenticated peer can cost.
 */
import { AgentPeerLinks, CoordinatorDaemon } from '@seesaw/coordinator';
import {
  connectAndHello,
  connectWebSocket,
  encodeFrame,
  type Message,
  type WebSocketEndpoint,
} from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';

const token = 'a-test-cluster-token-of-32-bytes-or-more';
const quiet = () => {};
let daemon: CoordinatorDaemon | undefined;

afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

async function startDaemon(extra: Partial<Parameters<typeof CoordinatorDaemon.start>[0]> = {}) {
  const lines: string[] = [];
  daemon = await CoordinatorDaemon.start({ port: 0, token, log: (line) => lines.push(line), ...extra });
  return { daemon, lines };
}

function connect(url: string): Promise<WebSocketEndpoint<Message, Message>> {
  return connectWebSocket<Message, Message>(url, { log: quiet });
}

function closed(endpoint: WebSocketEndpoint<Message, Message>): Promise<string> {
  return new Promise((resolve) => endpoint.onClose(resolve));
}

describe('before authentication', () => {
  it('item 1: a 1 MiB frame before hello closes the link at the 64 KiB limit (coordinator)', async () => {
    const { daemon } = await startDaemon();
    const link = await connect(daemon.url);
    const done = closed(link);
    link.sendFrame(new Uint8Array(1 << 20));
    expect(await done).toMatch(/1009/);
    await expect.poll(() => daemon.metrics.get('refusedConnectionsTotal')).toBe(1);
  });

  it('item 1: a 1 MiB frame before hello closes the link (agent peer-link listener)', async () => {
    const links = await AgentPeerLinks.listen({
      host: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      port: 0,
      token,
      log: quiet,
    });
    try {
      const link = await connect(links.url);
      const done = closed(link);
      link.sendFrame(new Uint8Array(1 << 20));
      expect(await done).toMatch(/1009/);
    } finally {
      await links.close();
    }
  });

  it('item 1: unauthenticated connections are capped per address', async () => {
    const { daemon } = await startDaemon({ gate: { perAddress: 2, total: 10 } });
    const held = [await connect(daemon.url), await connect(daemon.url)];
    const third = await connect(daemon.url);
    expect(await closed(third)).toMatch(/ws closed/);
    // Authenticating frees the slot: a new peer with the token gets in.
    await connectAndHello(held[0]!, { role: 'coordinator', name: 'client', token });
    const fourth = await connect(daemon.url);
    await connectAndHello(fourth, { role: 'coordinator', name: 'client', token });
    for (const link of [...held, fourth]) link.close();
  });

  it('item 4: a peer-chosen name cannot write a fake log line', async () => {
    const { daemon, lines } = await startDaemon();
    const link = await connect(daemon.url);
    const fake = 'x\ncoordinator: host host-z joined with 64 devices';
    await expect(connectAndHello(link, { role: 'device', name: fake, token: 'wrong' })).rejects.toThrow(
      /wrong token/,
    );
    const text = lines.join('\n');
    expect(text.split('\n').some((line) => line.startsWith('coordinator: host host-z'))).toBe(false);
    expect(text).toContain('\\ncoordinator: host host-z');
  });

  it('item 5: 20 garbage-sending connections are counted and log a bounded number of lines', async () => {
    const { daemon, lines } = await startDaemon({ gate: { perAddress: 32, baseDelayMs: 1 } });
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const link = await connect(daemon.url);
        const done = closed(link);
        for (let i = 0; i < 100; i++) link.sendFrame(new Uint8Array([1, 2, 3, i]));
        await done;
      }),
    );
    await expect.poll(() => daemon.metrics.get('refusedConnectionsTotal')).toBe(20);
    // One rejected frame closes a connection, and peer lines are rate-limited (burst 20).
    expect(lines.length).toBeLessThanOrEqual(22);
    expect(daemon.metricsText()).toMatch(/seesaw_refused_connections_total 20/);
  });

  it('item 6: failed handshakes from one address are answered slower and slower', async () => {
    const { daemon } = await startDaemon({ gate: { baseDelayMs: 100 } });
    let lastMs = 0;
    for (let i = 0; i < 4; i++) {
      const link = await connect(daemon.url);
      const start = performance.now();
      await expect(
        connectAndHello(link, { role: 'device', name: 'guess', token: `guess-${i}` }),
      ).rejects.toThrow(/wrong token/);
      lastMs = performance.now() - start;
    }
    // Delays 100, 200, 400, 800 ms: the fourth guess waited at least 800 ms (a lower bound only).
    expect(lastMs).toBeGreaterThanOrEqual(750);
  });

  it('item 7: a malformed hello closes the connection at once and is counted', async () => {
    const { daemon } = await startDaemon();
    for (const hello of [
      { tag: 'hello', role: 'device', name: 'n', token: 12345, protocolVersion: 1 },
      { tag: 'hello', role: 'device', name: 'n', token, protocolVersion: '1' },
      { tag: 'hello', role: 'device', name: 'n', token: 't'.repeat(5000), protocolVersion: 1 },
    ]) {
      const link = await connect(daemon.url);
      const done = closed(link);
      link.sendFrame(encodeFrame(hello as unknown as Message, []));
      // Well before the 10 s hello timeout (the test's own 5 s limit would fail first).
      expect(await done).toMatch(/ws closed/);
    }
    await expect.poll(() => daemon.metrics.get('refusedConnectionsTotal')).toBe(3);
  }, 5000);
});

describe('after authentication', () => {
  it('item 8: a link silent after welcome is closed after the idle timeout', async () => {
    const { daemon } = await startDaemon({ firstMessageTimeoutMs: 300 });
    const link = await connect(daemon.url);
    await connectAndHello(link, { role: 'coordinator', name: 'silent', token });
    expect(await closed(link)).toMatch(/ws closed/);
  }, 5000);
});
