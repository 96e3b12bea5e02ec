import { describe, expect, it } from 'vitest';
import { randomInt, seededRandom } from '../test/random.ts';
import { sampleMessages } from '../test/sample-messages.ts';
import {
  expectEveryMessageRoundTrips,
  expectMalformedFramesRejected,
  nextMessages,
} from '../test/transport-checks.ts';
import { encodeFrame } from './codec.ts';
import type { Endpoint } from './endpoint.ts';
import { acceptHello, connectAndHello, HandshakeError, isTokenEqual } from './handshake.ts';
import { createInProcessPair } from './in-process.ts';
import { PROTOCOL_VERSION } from './messages/common.ts';
import { INBOUND_TAGS } from './messages/index.ts';

function echo(endpoint: Endpoint): void {
  endpoint.onMessage((message, tensors) => endpoint.post(message, tensors));
}

const quiet = () => {};

describe('in-process transport', () => {
  it('round-trips every message type through encode/decode', async () => {
    const [a, b] = createInProcessPair({ log: quiet });
    echo(b);
    await expectEveryMessageRoundTrips(a);
  });

  it('round-trips every message type without encoding (flag)', async () => {
    const [a, b] = createInProcessPair({ log: quiet, isEncoded: false });
    echo(b);
    await expectEveryMessageRoundTrips(a);
  });

  it('answers malformed frames with protocolError and keeps working', async () => {
    const lines: string[] = [];
    const [a, b] = createInProcessPair({ log: (line) => lines.push(line) });
    echo(b);
    await expectMalformedFramesRejected(a);
    expect(b.numRejectedFrames).toBe(6);
    expect(lines.filter((l) => l.includes('rejected frame from in-process b'))).toHaveLength(6);
  });

  it('keeps answering through a storm of mutated frames', async () => {
    const [a, b] = createInProcessPair({ log: quiet });
    echo(b);
    const random = seededRandom(5);
    const frames = sampleMessages(random).map((s) => encodeFrame(s.message, s.tensors));
    let numReplies = 0;
    const alive = new Promise<void>((resolve) =>
      a.onMessage((m) => {
        numReplies++;
        if (m.tag === 'heartbeat' && m.seq === 42) resolve();
      }),
    );
    for (let i = 0; i < 2000; i++) {
      const frame = frames[randomInt(random, frames.length)]!.slice();
      for (let k = 0; k < 3; k++)
        frame[randomInt(random, Math.min(frame.length, 48))] = randomInt(random, 256);
      a.sendFrame(frame);
    }
    a.post({ tag: 'heartbeat', seq: 42, sentAtMs: 0 });
    await alive;
    // Each frame got one answer (an echo or a protocolError), except rejected frames that
    // still claimed to be a protocolError: those are never answered (no error ping-pong).
    expect(numReplies).toBeGreaterThan(1900);
    expect(numReplies).toBeLessThanOrEqual(2001);
    expect(b.numRejectedFrames).toBeGreaterThan(1000);
  });

  it('rejects tags meant for another link', async () => {
    const [coordinator, device] = createInProcessPair({
      log: quiet,
      accepts: [INBOUND_TAGS.deviceToCoordinator, INBOUND_TAGS.coordinatorToDevice],
    });
    const replies = nextMessages(coordinator, 1);
    coordinator.post({ tag: 'kvPutDone', requestId: 1 });
    const [reply] = await replies;
    expect(reply!.message).toMatchObject({
      tag: 'protocolError',
      code: 'unexpected',
      rejectedTag: 'kvPutDone',
    });
    expect(device.numRejectedFrames).toBe(1);
  });

  it('queues messages that arrive before a handler is registered', async () => {
    const [a, b] = createInProcessPair({ log: quiet });
    a.post({ tag: 'heartbeat', seq: 1, sentAtMs: 0 });
    a.post({ tag: 'heartbeat', seq: 2, sentAtMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    const got = await nextMessages(b, 2);
    expect(got.map((g) => (g.message as { seq: number }).seq)).toEqual([1, 2]);
  });

  it('survives a throwing handler', async () => {
    const lines: string[] = [];
    const [a, b] = createInProcessPair({ log: (line) => lines.push(line) });
    b.onMessage(() => {
      throw new Error('boom');
    });
    const after = nextMessages(b, 2);
    a.post({ tag: 'heartbeat', seq: 1, sentAtMs: 0 });
    a.post({ tag: 'heartbeat', seq: 2, sentAtMs: 0 });
    expect(await after).toHaveLength(2);
    expect(lines.some((l) => l.includes('threw: Error: boom'))).toBe(true);
  });

  it('reports close on both ends, after pending messages', async () => {
    const [a, b] = createInProcessPair({ log: quiet });
    const order: string[] = [];
    b.onMessage((m) => order.push(m.tag));
    const closed = new Promise<string>((resolve) => b.onClose(resolve));
    a.post({ tag: 'shutdown', mode: 'drain' });
    a.close();
    expect(await closed).toBe('closed by peer');
    expect(order).toEqual(['shutdown']);
    expect(a.isClosed && b.isClosed).toBe(true);
    a.post({ tag: 'heartbeat', seq: 1, sentAtMs: 0 }); // dropped, no throw
  });
});

describe('handshake', () => {
  const token = 'correct horse battery staple';

  it('accepts a peer with the right token and version', async () => {
    const [client, server] = createInProcessPair({ log: quiet });
    const lines: string[] = [];
    const [accepted, welcomed] = await Promise.all([
      acceptHello(server, {
        role: 'coordinator',
        name: 'coord',
        expectedToken: token,
        log: (l) => lines.push(l),
      }),
      connectAndHello(client, { role: 'device', name: 'device-0', token }),
    ]);
    expect(accepted).toEqual({ role: 'device', name: 'device-0', protocolVersion: PROTOCOL_VERSION });
    expect(welcomed).toEqual({ role: 'coordinator', name: 'coord', protocolVersion: PROTOCOL_VERSION });
    expect(lines).toEqual(['handshake: accepted device "device-0" at in-process b']);
    // The link works afterwards, in both directions.
    const got = nextMessages(server, 1);
    client.post({ tag: 'heartbeat', seq: 3, sentAtMs: 0 });
    expect((await got)[0]!.message.tag).toBe('heartbeat');
  });

  it.each([
    ['wrong token', { token: 'guess' }, /wrong token/],
    [
      'wrong version',
      { token, version: PROTOCOL_VERSION + 1 },
      new RegExp(`protocol version ${PROTOCOL_VERSION + 1} != ${PROTOCOL_VERSION}`),
    ],
  ])('refuses a %s, logs it and closes', async (_name, hello, reason) => {
    const [client, server] = createInProcessPair({ log: quiet });
    const lines: string[] = [];
    const serverSide = acceptHello(server, {
      role: 'coordinator',
      name: 'coord',
      expectedToken: token,
      log: (l) => lines.push(l),
    });
    const clientSide = connectAndHello(client, { role: 'device', name: 'intruder', ...hello });
    await expect(serverSide).rejects.toThrow(reason);
    const error = await clientSide.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).isRefused).toBe(true);
    expect((error as HandshakeError).reason).toMatch(reason);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/refused device "intruder" at in-process b/);
    expect(lines[0]).toMatch(reason);
    expect(server.isClosed && client.isClosed).toBe(true);
  });

  it('refuses a first message that is not hello, and disallowed roles', async () => {
    const [client, server] = createInProcessPair({ log: quiet });
    const serverSide = acceptHello(server, {
      role: 'coordinator',
      name: 'c',
      expectedToken: token,
      log: quiet,
    });
    client.post({ tag: 'heartbeat', seq: 0, sentAtMs: 0 });
    await expect(serverSide).rejects.toThrow(/expected hello, got heartbeat/);
    const [client2, server2] = createInProcessPair({ log: quiet });
    const refused = acceptHello(server2, {
      role: 'coordinator',
      name: 'c',
      expectedToken: token,
      allowedRoles: ['device'],
      log: quiet,
    }).catch((e: unknown) => e);
    await expect(connectAndHello(client2, { role: 'kvStore', name: 'kv', token })).rejects.toThrow(
      /role kvStore not allowed/,
    );
    expect(await refused).toBeInstanceOf(HandshakeError);
  });

  it('times out when the peer says nothing', async () => {
    const [client, server] = createInProcessPair({ log: quiet });
    const lines: string[] = [];
    await expect(
      acceptHello(server, {
        role: 'coordinator',
        name: 'c',
        expectedToken: token,
        log: (l) => lines.push(l),
        timeoutMs: 30,
      }),
    ).rejects.toThrow(/no hello within 30 ms/);
    expect(lines[0]).toMatch(/no hello/);
    await expect(
      connectAndHello(client, { role: 'device', name: 'd', token, timeoutMs: 30 }),
    ).rejects.toThrow(HandshakeError);
  });

  it('compares tokens correctly whatever their lengths', () => {
    expect(isTokenEqual('abc', 'abc')).toBe(true);
    expect(isTokenEqual('abc', 'abd')).toBe(false);
    expect(isTokenEqual('abc', 'abcd')).toBe(false);
    expect(isTokenEqual('', 'x')).toBe(false);
  });
});
