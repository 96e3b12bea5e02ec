/**
 * The hello/welcome handshake every link starts with. The connecting side says who it is
 * and proves it knows the cluster token; the accepting side checks version and token and
 * answers welcome, or refused (then closes and logs a line naming the peer).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { type Endpoint, FrameEndpoint } from './endpoint.ts';
import { escapeForLog } from './log-safety.ts';
import { type Hello, PROTOCOL_VERSION, type Refused, type Role, type Welcome } from './messages/common.ts';
import type { Message } from './messages/index.ts';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Who is on the other end, once the handshake succeeded. */
export interface PeerInfo {
  role: Role;
  name: string;
  protocolVersion: number;
}

/** The handshake did not complete; `reason` says why (refusal reason, timeout, close). */
export class HandshakeError extends Error {
  constructor(
    readonly reason: string,
    readonly isRefused: boolean,
  ) {
    super(`handshake failed: ${reason}`);
    this.name = 'HandshakeError';
  }
}

/** Compares secrets in time independent of where they differ (and of their lengths). */
export function isTokenEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Resolves with the first message (or rejects on close/timeout), then stops listening. */
function firstMessage(
  endpoint: Endpoint<Message, Message>,
  timeoutMs: number,
  what: string,
): Promise<Message> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      offMessage();
      offClose();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new HandshakeError(`no ${what} within ${timeoutMs} ms`, false));
    }, timeoutMs);
    const offMessage = endpoint.onMessage((message) => {
      stop();
      resolve(message);
    });
    const offClose = endpoint.onClose((reason) => {
      stop();
      reject(new HandshakeError(`connection closed before ${what}: ${reason}`, false));
    });
  });
}

export interface HelloOptions {
  role: Role;
  name: string;
  token: string;
  /** Defaults to PROTOCOL_VERSION (tests pass others). */
  version?: number;
  timeoutMs?: number;
}

/** Sends hello and waits for welcome; closes the endpoint and rejects on anything else. */
export async function connectAndHello(
  endpoint: Endpoint<Hello, Message>,
  options: HelloOptions,
): Promise<PeerInfo> {
  const hello: Hello = {
    tag: 'hello',
    role: options.role,
    name: options.name,
    token: options.token,
    protocolVersion: options.version ?? PROTOCOL_VERSION,
  };
  const answer = firstMessage(endpoint, options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 'welcome');
  endpoint.post(hello);
  let message: Message;
  try {
    message = await answer;
  } catch (error) {
    endpoint.close('handshake failed');
    throw error;
  }
  if (message.tag === 'welcome')
    return { role: message.role, name: message.name, protocolVersion: message.protocolVersion };
  endpoint.close('handshake refused');
  if (message.tag === 'refused') throw new HandshakeError(message.reason, true);
  const detail = message.tag === 'protocolError' ? `${message.code}: ${message.message}` : message.tag;
  throw new HandshakeError(`expected welcome, got ${detail}`, false);
}

export interface AcceptOptions {
  /** This side's identity, sent in welcome. */
  role: Role;
  name: string;
  expectedToken: string;
  /** Defaults to PROTOCOL_VERSION. */
  version?: number;
  /** Roles allowed to connect here (default any). */
  allowedRoles?: readonly Role[];
  /** Gets one line per accepted or refused peer. */
  log: (line: string) => void;
  timeoutMs?: number;
}

/**
 * Waits for the peer's hello and answers it. On a bad hello: posts refused with the reason,
 * logs it, closes the endpoint and rejects with a HandshakeError (isRefused true).
 */
export async function acceptHello(
  endpoint: Endpoint<Welcome | Refused, Message>,
  options: AcceptOptions,
): Promise<PeerInfo> {
  const version = options.version ?? PROTOCOL_VERSION;
  let message: Message;
  try {
    message = await firstMessage(endpoint, options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 'hello');
  } catch (error) {
    options.log(`handshake: ${endpoint.name}: ${(error as HandshakeError).reason}`);
    if (endpoint instanceof FrameEndpoint) endpoint.admission?.onFailedHandshake();
    endpoint.close('handshake failed');
    throw error;
  }
  // Peer-chosen strings are escaped and cut short: they must not forge log lines.
  const peer =
    message.tag === 'hello'
      ? `${message.role} ${escapeForLog(message.name)} at ${endpoint.name}`
      : endpoint.name;
  const reason = refusalReason(message, options, version);
  if (reason !== undefined) {
    options.log(`handshake: refused ${peer}: ${reason}`);
    const delayMs = endpoint instanceof FrameEndpoint ? (endpoint.admission?.onFailedHandshake() ?? 0) : 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    endpoint.post({ tag: 'refused', reason });
    endpoint.close(`refused: ${reason}`);
    throw new HandshakeError(reason, true);
  }
  if (endpoint instanceof FrameEndpoint) endpoint.markAuthenticated();
  const hello = message as Hello;
  const welcome: Welcome = {
    tag: 'welcome',
    role: options.role,
    name: options.name,
    protocolVersion: version,
  };
  endpoint.post(welcome);
  options.log(`handshake: accepted ${peer}`);
  return { role: hello.role, name: hello.name, protocolVersion: hello.protocolVersion };
}

function refusalReason(message: Message, options: AcceptOptions, version: number): string | undefined {
  if (message.tag !== 'hello') return `expected hello, got ${message.tag}`;
  // Token first, so a peer without the token learns nothing else about this side.
  if (!isTokenEqual(message.token, options.expectedToken)) return 'wrong token';
  if (message.protocolVersion !== version)
    return `protocol version ${escapeForLog(message.protocolVersion, 16)} != ${version}`;
  if (options.allowedRoles && !options.allowedRoles.includes(message.role))
    return `role ${message.role} not allowed here`;
  return undefined;
}
