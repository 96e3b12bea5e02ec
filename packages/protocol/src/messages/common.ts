/**
 * Messages every direction shares: the handshake, heartbeats, shutdown and the error reply
 * a receiver sends for a frame it rejected.
 */

import { count, finite, int, oneOf, str } from '../check.ts';
import { type MessageSchema, schema } from './schema.ts';

/**
 * Version of the message schemas; peers with different versions refuse each other at hello.
 * 2: openJob carries the client's whole EngineConfig instead of loose engine options.
 */
export const PROTOCOL_VERSION = 2;

/** Half-open integer range [start, end). */
export interface Range {
  start: number;
  end: number;
}

export type Role = 'coordinator' | 'device' | 'kvStore';
export const ROLES: readonly Role[] = ['coordinator', 'device', 'kvStore'];

/** First message on every connection, from the connecting side. */
export interface Hello {
  tag: 'hello';
  /** What the connecting actor is. */
  role: Role;
  /** Human-readable actor name for logs, e.g. 'device-0@host-a'. */
  name: string;
  /** Shared cluster secret; compared in constant time. */
  token: string;
  /** The sender's PROTOCOL_VERSION. */
  protocolVersion: number;
}

/** The accepting side's answer to a good hello. */
export interface Welcome {
  tag: 'welcome';
  /** What the accepting actor is. */
  role: Role;
  /** Accepting actor's name for logs. */
  name: string;
  /** The accepting side's PROTOCOL_VERSION (equal to the hello's). */
  protocolVersion: number;
}

/** The accepting side's answer to a bad hello; the connection is closed right after. */
export interface Refused {
  tag: 'refused';
  /** Why, e.g. 'wrong token' or 'protocol version 2 != 1'. */
  reason: string;
}

/** Liveness probe; either side may send it at any time after the handshake. */
export interface Heartbeat {
  tag: 'heartbeat';
  /** Sender's monotonically increasing heartbeat counter. */
  seq: number;
  /** Sender's wall clock (ms since epoch) when sent; for round-trip estimates only. */
  sentAtMs: number;
}

/** Orderly or immediate stop of an actor. */
export interface Shutdown {
  tag: 'shutdown';
  /** 'drain': finish in-flight work first; 'abort': stop now and drop work. */
  mode: 'drain' | 'abort';
}

export type ProtocolErrorCode =
  | 'truncated'
  | 'headerTooLarge'
  | 'badHeader'
  | 'wireFormat'
  | 'unknownTag'
  | 'badField'
  | 'badTensor'
  | 'unexpected';

/** Reply to a frame the receiver rejected; never answered with another error (no loops). */
export interface ProtocolError {
  tag: 'protocolError';
  /** Which check failed. */
  code: ProtocolErrorCode;
  /** Detail for logs, e.g. 'step.batch.seqs[3].startPos: expected an integer in [0, ...]'. */
  message: string;
  /** Tag of the rejected frame when it could be read. */
  rejectedTag?: string;
}

export type CommonMessage = Hello | Welcome | Refused | Heartbeat | Shutdown | ProtocolError;

const role = oneOf(...ROLES);
const protocolVersion = int(0, 0xffff_ffff);

export const commonSchemas: Record<CommonMessage['tag'], MessageSchema> = {
  hello: schema({ role, name: str(256), token: str(4096), protocolVersion }),
  welcome: schema({ role, name: str(256), protocolVersion }),
  refused: schema({ reason: str(1024) }),
  heartbeat: schema({ seq: count, sentAtMs: finite(0) }),
  shutdown: schema({ mode: oneOf('drain', 'abort') }),
  protocolError: schema(
    {
      code: oneOf(
        'truncated',
        'headerTooLarge',
        'badHeader',
        'wireFormat',
        'unknownTag',
        'badField',
        'badTensor',
        'unexpected',
      ),
      message: str(4096),
    },
    undefined,
    { rejectedTag: str(256) },
  ),
};
