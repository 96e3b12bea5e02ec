/**
 * Endpoints over WebSockets (`ws`), for links between hosts. One frame = one binary
 * WebSocket message; a frame with tensors is written as several WebSocket fragments
 * (prefix, then each tensor's own bytes) so the sender never concatenates payloads.
 * Backpressure: `bufferedAmount` and `waitForDrain()`.
 */

import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { encodeFrameParts } from './codec.ts';
import { ConnectionGate, type ConnectionGateOptions } from './connection-gate.ts';
import { FrameEndpoint, type FrameEndpointOptions } from './endpoint.ts';
import type { Message } from './messages/index.ts';
import type { Tensor } from './tensor.ts';
import {
  createListenerServer,
  describeConnectError,
  type TlsServerCredentials,
  webSocketScheme,
} from './tls.ts';

/** Default largest incoming message (frame) in bytes, once the peer is authenticated. */
export const DEFAULT_MAX_FRAME_BYTES = 1 << 30;
/** Largest frame an accepting side takes before the peer's hello was accepted. */
export const DEFAULT_PRE_AUTH_MAX_FRAME_BYTES = 64 * 1024;

export interface WebSocketOptions extends FrameEndpointOptions {
  /** Largest frame accepted; larger messages close the connection (ws code 1009). */
  maxFrameBytes?: number;
}

interface ReceiverWithLimit {
  _maxPayload: number;
}

/**
 * Sets the largest message `ws` will buffer on this socket. `ws` has no public per-socket
 * setter, so this writes its receiver's limit (checked against each frame header before any
 * payload is buffered); it throws if a `ws` upgrade renamed the field, rather than silently
 * keeping a limit we did not mean.
 */
export function setSocketMaxPayload(socket: WebSocket, bytes: number): void {
  const receiver = (socket as unknown as { _receiver?: ReceiverWithLimit })._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number')
    throw new Error('ws receiver has no _maxPayload: cannot change the frame limit of this socket');
  receiver._maxPayload = bytes;
}

export class WebSocketEndpoint<
  Out extends Message = Message,
  In extends Message = Message,
> extends FrameEndpoint<Out, In> {
  private readonly drainWaiters: Array<{ limit: number; resolve: () => void }> = [];

  private readonly maxFrameBytes: number;

  constructor(
    private readonly socket: WebSocket,
    name: string,
    options: WebSocketOptions = {},
  ) {
    super(name, options);
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!isBinary) {
        this.reject('badHeader', 'text WebSocket message; frames are binary');
        return;
      }
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : data;
      this.receiveFrame(bytes);
    });
    socket.on('close', (code, reason) => {
      this.transportClosed(`ws closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      this.wakeDrainWaiters(true);
    });
    socket.on('error', (error) => this.log(`protocol: ${this.name}: ws error: ${error.message}`));
  }

  /** Lifts the pre-authentication frame limit to this link's full one. */
  override markAuthenticated(): void {
    super.markAuthenticated();
    setSocketMaxPayload(this.socket, this.maxFrameBytes);
  }

  /** Bytes queued but not yet written to the socket. */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /** Resolves once at most `limit` bytes are queued (or the socket closed). */
  waitForDrain(limit = 0): Promise<void> {
    if (this.bufferedAmount <= limit || this.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push({ limit, resolve }));
  }

  protected override transmit(message: Out, tensors: readonly Tensor[]): void {
    const parts = encodeFrameParts(message, tensors);
    const last = parts.length - 1;
    // Tensor bytes are passed as read-only views: ws copies before masking, never in place.
    parts.forEach((part, i) => {
      this.socket.send(
        part,
        { binary: true, fin: i === last, compress: false },
        i === last ? this.onWritten : undefined,
      );
    });
  }

  protected transmitFrame(frame: Uint8Array): void {
    this.socket.send(frame, { binary: true, compress: false }, this.onWritten);
  }

  protected closeTransport(): void {
    // Graceful: queued frames (e.g. a 'refused' answer) are flushed before the close frame.
    this.socket.close(1000);
  }

  private readonly onWritten = (error?: Error): void => {
    if (error) this.log(`protocol: ${this.name}: send failed: ${error.message}`);
    this.wakeDrainWaiters(false);
  };

  private wakeDrainWaiters(isClosing: boolean): void {
    for (let i = this.drainWaiters.length - 1; i >= 0; i--) {
      const waiter = this.drainWaiters[i]!;
      if (isClosing || this.bufferedAmount <= waiter.limit) {
        this.drainWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }
}

export interface WebSocketListener {
  readonly host: string;
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly url: string;
  /** Stops accepting and closes every open connection. */
  close(): Promise<void>;
}

export interface ListenOptions extends WebSocketOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Certificate and key: the listener speaks TLS only (wss://). */
  tls?: TlsServerCredentials;
  /** One endpoint per accepted connection (run acceptHello on it). */
  onConnection: (endpoint: WebSocketEndpoint, request: IncomingMessage) => void;
  /** Largest frame before the peer's hello is accepted (default 64 KiB). */
  preAuthMaxFrameBytes?: number;
  /** Caps on unauthenticated connections and the slow-down of failed handshakes. */
  gate?: ConnectionGate | ConnectionGateOptions;
  /** Called for every connection that did not complete its handshake (metrics). */
  onHandshakeFailed?: () => void;
  /**
   * Benchmark sinks only: connections skip the pre-authentication limits (no hello expected).
   * Never for a listener reachable by untrusted peers.
   */
  isWithoutAuthentication?: boolean;
}

function peerName(request: IncomingMessage): string {
  return `ws ${request.socket.remoteAddress}:${request.socket.remotePort}`;
}

export interface AdmitOptions extends WebSocketOptions {
  gate: ConnectionGate;
  log: (line: string) => void;
  onHandshakeFailed?: () => void;
}

/**
 * Wraps an accepted socket for a link that must authenticate: strict until hello, admitted
 * through the gate (or terminated at once when over its caps), and lifted to the full frame
 * limit on welcome. Returns undefined when the gate refused the connection.
 */
export function admitWebSocket(
  socket: WebSocket,
  request: IncomingMessage,
  options: AdmitOptions,
): WebSocketEndpoint | undefined {
  const address = request.socket.remoteAddress ?? 'unknown';
  const release = options.gate.admit(address);
  if (typeof release === 'string') {
    options.log(`protocol: ws ${address}: connection dropped: ${release}`);
    options.onHandshakeFailed?.();
    socket.terminate();
    return undefined;
  }
  const endpoint = new WebSocketEndpoint(socket, peerName(request), {
    ...options,
    isStrictUntilAuthenticated: true,
  });
  let isDecided = false;
  endpoint.admission = {
    onAuthenticated: () => {
      isDecided = true;
      options.gate.recordSuccess(address);
      release();
    },
    onFailedHandshake: () => {
      if (!isDecided) options.onHandshakeFailed?.();
      isDecided = true;
      return options.gate.recordFailure(address);
    },
  };
  endpoint.onClose(() => {
    // Closed before any handshake outcome (garbage frame, oversized frame, peer hung up).
    if (!isDecided) {
      isDecided = true;
      options.onHandshakeFailed?.();
      options.gate.recordFailure(address);
    }
    release();
  });
  return endpoint;
}

export function listenWebSocket(options: ListenOptions): Promise<WebSocketListener> {
  const host = options.host ?? '127.0.0.1';
  const httpServer = createListenerServer(options.tls);
  const server = new WebSocketServer({
    server: httpServer,
    // Every socket starts at the small pre-authentication limit; welcome lifts it.
    maxPayload: options.isWithoutAuthentication
      ? (options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
      : Math.min(
          options.preAuthMaxFrameBytes ?? DEFAULT_PRE_AUTH_MAX_FRAME_BYTES,
          options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        ),
    perMessageDeflate: false,
  });
  const gate = options.gate instanceof ConnectionGate ? options.gate : new ConnectionGate(options.gate);
  const log = options.log ?? ((line: string) => console.warn(line));
  server.on('connection', (socket, request) => {
    const endpoint = options.isWithoutAuthentication
      ? new WebSocketEndpoint(socket, peerName(request), options)
      : admitWebSocket(socket, request, {
          ...options,
          gate,
          log,
          onHandshakeFailed: options.onHandshakeFailed,
        });
    if (!endpoint) return;
    try {
      options.onConnection(endpoint, request);
    } catch (error) {
      endpoint.close(`connection handler threw: ${String(error)}`);
    }
  });
  server.on('error', (error) => options.log?.(`protocol: ws server error: ${error.message}`));
  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', reject);
      httpServer.on('error', (error) => options.log?.(`protocol: ws server error: ${error.message}`));
      const port = (httpServer.address() as AddressInfo).port;
      resolve({
        host,
        port,
        url: `${webSocketScheme(options.tls)}://${host.includes(':') ? `[${host}]` : host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const client of server.clients) client.terminate();
            server.close(() => httpServer.close(() => done()));
            httpServer.closeAllConnections?.();
          }),
      });
    });
  });
}

export interface ConnectOptions extends WebSocketOptions {
  /** Give up connecting after this long (default 10 s). */
  timeoutMs?: number;
  /**
   * Mask client frames with random keys (default false: all-zero keys). RFC 6455 masking
   * protects HTTP intermediaries from script-crafted bytes in browsers; between trusted
   * cluster actors it only costs a pass over every payload byte on both sides (without the
   * optional native bufferutil, a slow JS loop), so by default the key is zero and ws skips it.
   */
  isMasked?: boolean;
  /**
   * Certificates (PEM) a wss:// server's certificate must chain to: a CA, or the server's own
   * certificate (trusted as it is, as the coordinator's in-process service dials its own
   * listener); the system's CAs when absent.
   */
  tlsCa?: string | Buffer;
}

const zeroMask = (mask: Uint8Array): void => {
  mask.fill(0);
};

export function connectWebSocket<Out extends Message = Message, In extends Message = Message>(
  url: string,
  options: ConnectOptions = {},
): Promise<WebSocketEndpoint<Out, In>> {
  const socket = new WebSocket(url, {
    maxPayload: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    perMessageDeflate: false,
    handshakeTimeout: options.timeoutMs ?? 10_000,
    generateMask: options.isMasked ? undefined : zeroMask,
    // A listed certificate is a trust anchor even when it is not a self-signed root.
    ...(options.tlsCa !== undefined ? { ca: options.tlsCa, allowPartialTrustChain: true } : {}),
  });
  // Created before 'open' so no early message is missed; the endpoint queues until handled.
  const endpoint = new WebSocketEndpoint<Out, In>(socket, `ws ${url}`, options);
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(describeConnectError(url, error)));
    socket.once('error', onError);
    socket.once('open', () => {
      socket.off('error', onError);
      resolve(endpoint);
    });
  });
}
