import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  expectEveryMessageRoundTrips,
  expectMalformedFramesRejected,
  nextMessages,
} from '../test/transport-checks.ts';
import type { Endpoint } from './endpoint.ts';
import { acceptHello, connectAndHello, HandshakeError } from './handshake.ts';
import { PROTOCOL_VERSION } from './messages/common.ts';
import {
  connectWebSocket,
  listenWebSocket,
  type WebSocketEndpoint,
  type WebSocketListener,
} from './websocket.ts';

const token = 'ws-token';
const quiet = () => {};
let listener: WebSocketListener | undefined;
const clients: Endpoint[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await listener?.close();
  listener = undefined;
});

/** A server that runs the handshake on each connection, then echoes. */
async function startEchoServer(
  log: (line: string) => void = quiet,
): Promise<{ url: string; serverSides: WebSocketEndpoint[] }> {
  const serverSides: WebSocketEndpoint[] = [];
  listener = await listenWebSocket({
    port: 0,
    log: quiet,
    onConnection: (endpoint) => {
      serverSides.push(endpoint);
      acceptHello(endpoint, { role: 'coordinator', name: 'ws-server', expectedToken: token, log }).then(
        () => endpoint.onMessage((message, tensors) => endpoint.post(message, tensors)),
        () => {},
      );
    },
  });
  return { url: listener.url, serverSides };
}

async function connect(url: string): Promise<WebSocketEndpoint> {
  const client = await connectWebSocket(url, { log: quiet });
  clients.push(client);
  return client;
}

describe('WebSocket transport', () => {
  it('round-trips every message type after a handshake', async () => {
    const { url } = await startEchoServer();
    const client = await connect(url);
    expect(await connectAndHello(client, { role: 'device', name: 'd0', token })).toMatchObject({
      name: 'ws-server',
    });
    await expectEveryMessageRoundTrips(client);
  });

  it('round-trips with RFC random masking switched on too', async () => {
    const { url } = await startEchoServer();
    const client = await connectWebSocket(url, { log: quiet, isMasked: true });
    clients.push(client);
    await connectAndHello(client, { role: 'device', name: 'd0', token });
    await expectEveryMessageRoundTrips(client);
  });

  it('closes (1009) on a frame above maxFrameBytes instead of buffering it', async () => {
    const serverSides: WebSocketEndpoint[] = [];
    listener = await listenWebSocket({
      port: 0,
      log: quiet,
      maxFrameBytes: 4096,
      onConnection: (e) => serverSides.push(e),
    });
    const client = await connect(listener.url);
    const closed = new Promise<string>((resolve) => client.onClose(resolve));
    client.post({ tag: 'activations', stepId: 0, microBatch: 0, fromStage: 0, numTokens: 4 }, [
      { dtype: 'f32', shape: [4, 1024], data: new Float32Array(4096) },
    ]);
    expect(await closed).toMatch(/1009/);
  });

  it('answers malformed frames (and text frames) with protocolError and keeps working', async () => {
    const { url } = await startEchoServer();
    const client = await connect(url);
    await connectAndHello(client, { role: 'device', name: 'd0', token });
    await expectMalformedFramesRejected(client);
    const raw = new WebSocket(url);
    await new Promise((resolve) => raw.once('open', resolve));
    const reply = new Promise<Buffer>((resolve) => raw.once('message', (data) => resolve(data as Buffer)));
    raw.send('hello as text');
    expect((await reply).toString()).toContain('protocolError');
    raw.close();
  });

  it('refuses a wrong token and a wrong version, logging the peer', async () => {
    const lines: string[] = [];
    const { url } = await startEchoServer((line) => lines.push(line));
    const intruder = await connect(url);
    const closed = new Promise<string>((resolve) => intruder.onClose(resolve));
    const error = await connectAndHello(intruder, { role: 'device', name: 'intruder', token: 'bad' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).reason).toBe('wrong token');
    await closed;
    const old = await connect(url);
    await expect(connectAndHello(old, { role: 'device', name: 'old', token, version: 0 })).rejects.toThrow(
      new RegExp(`protocol version 0 != ${PROTOCOL_VERSION}`),
    );
    expect(lines[0]).toMatch(/^handshake: refused device "intruder" at ws 127\.0\.0\.1:\d+: wrong token$/);
    expect(lines[1]).toMatch(new RegExp(`refused device "old" .*protocol version 0 != ${PROTOCOL_VERSION}`));
  });

  it('reports close to the server side when the client goes away', async () => {
    const { url, serverSides } = await startEchoServer();
    const client = await connect(url);
    await connectAndHello(client, { role: 'device', name: 'd0', token });
    const serverClosed = new Promise<string>((resolve) => serverSides[0]!.onClose(resolve));
    client.close();
    expect(await serverClosed).toMatch(/ws closed \(1000/);
  });

  it('fails to connect to a closed port with an error, not a hang', async () => {
    const { url } = await startEchoServer();
    await listener!.close();
    listener = undefined;
    await expect(connectWebSocket(url, { log: quiet })).rejects.toThrow(/connectWebSocket/);
  });

  it('exposes backpressure: bufferedAmount grows, waitForDrain resolves', async () => {
    const { url } = await startEchoServer();
    const client = await connect(url);
    await connectAndHello(client, { role: 'device', name: 'd0', token });
    const big = new Float32Array(4 << 20); // 16 MiB
    const numMessages = 4;
    const echoes = nextMessages(client, numMessages, 30_000);
    for (let i = 0; i < numMessages; i++) {
      client.post(
        { tag: 'allReduceChunk', opId: i, stepId: 0, round: 0, chunkIndex: 0, numChunks: 1, fromRank: 0 },
        [{ dtype: 'f32', shape: [big.length], data: big }],
      );
    }
    expect(client.bufferedAmount).toBeGreaterThan(big.byteLength);
    await client.waitForDrain(0);
    expect(client.bufferedAmount).toBe(0);
    const got = await echoes;
    expect(got.map((g) => (g.message as { opId: number }).opId)).toEqual([0, 1, 2, 3]);
    expect(got[3]!.tensors[0]!.data.length).toBe(big.length);
  });
});
