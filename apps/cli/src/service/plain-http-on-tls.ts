import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Plain http:// sent to the HTTPS port gets a 400 that says so, instead of a reset connection.
 * OpenSSL recognises an HTTP request as the first bytes (ERR_SSL_HTTP_REQUEST); the answer goes
 * on the raw TCP socket under the TLS one (Node's `_parent`; without it the socket just closes).
 */
export function answerPlainHttpOnTls(server: Server): void {
  server.on('tlsClientError', (error: Error & { code?: string }, socket: { _parent?: Socket }) => {
    const raw = socket._parent;
    if (error.code !== 'ERR_SSL_HTTP_REQUEST' || raw === undefined || raw.destroyed) return;
    const text = 'this port serves HTTPS: use https:// (and the CA of its certificate)\n';
    raw.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\n` +
        `connection: close\r\n\r\n${text}`,
    );
  });
}
