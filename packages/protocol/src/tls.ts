/**
 * TLS for the WebSocket links (wss://): what a listener needs (its certificate and key, PEM)
 * and what a client needs (the CA that signed the server's certificate; without one, the
 * system's CAs). Also turns the low-level failures of a scheme mismatch (ws:// to a TLS
 * listener, wss:// to a plain one, an unknown CA) into errors that say what to change.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

/** A listener's certificate chain and private key, PEM. */
export interface TlsServerCredentials {
  cert: string | Buffer;
  key: string | Buffer;
}

/** HTTP server for a WebSocket listener: HTTPS (wss://) with credentials, plain (ws://) without. */
export function createListenerServer(tls: TlsServerCredentials | undefined): Server {
  return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : createHttpServer();
}

/** 'wss' with credentials, 'ws' without. */
export function webSocketScheme(tls: TlsServerCredentials | undefined): 'ws' | 'wss' {
  return tls ? 'wss' : 'ws';
}

/** The connect error of `url`, with a hint when it looks like a TLS or scheme mismatch. */
export function describeConnectError(url: string, error: Error & { code?: string }): string {
  const isTls = url.startsWith('wss://');
  const code = error.code ?? '';
  let hint = '';
  if (
    !isTls &&
    (code === 'ECONNRESET' ||
      /socket hang up|Parse Error|Unexpected server response: 400/.test(error.message))
  ) {
    hint = ' (the server may require TLS: connect with wss:// and --tls-ca)';
  } else if (
    isTls &&
    (code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
      /wrong version number|packet length too long/.test(error.message))
  ) {
    hint = ' (the server does not speak TLS: connect with ws://)';
  } else if (
    isTls &&
    /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_|ERR_TLS_CERT_ALTNAME_INVALID/.test(code)
  ) {
    hint =
      ' (the server certificate is not signed by the CA given with --tls-ca, or does not name this host)';
  }
  return `connectWebSocket ${url}: ${error.message}${hint}`;
}
