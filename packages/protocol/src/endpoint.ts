/**
 * The one interface actors talk through, and the frame plumbing every transport shares:
 * decode + validate on receipt, an error reply for a rejected frame, handler bookkeeping,
 * and a queue for messages that arrive before anyone listens.
 */

import { type DecodeOptions, type DecodeResult, decodeFrame, encodeFrame } from './codec.ts';
import { escapeForLog } from './log-safety.ts';
import type { ProtocolError } from './messages/common.ts';
import type { Message } from './messages/index.ts';
import type { Tensor } from './tensor.ts';

export type MessageHandler<In extends Message> = (message: In, tensors: Tensor[]) => void;
export type CloseHandler = (reason: string) => void;

export interface Endpoint<Out extends Message = Message, In extends Message = Message> {
  /** Peer description for logs, e.g. 'ws 127.0.0.1:40312'. */
  readonly name: string;
  readonly isClosed: boolean;
  /**
   * Sends a message; tensors travel out of band (frame bytes or a shared region), in order.
   * Tensor memory must not change until the transport has taken it (post returns for
   * in-process, worker and WebSocket alike once the bytes are copied or queued read-only).
   * Posting on a closed endpoint drops the message.
   */
  post(message: Out, tensors?: readonly Tensor[]): void;
  /** Every valid incoming message, in order; returns an unsubscribe function. */
  onMessage(handler: MessageHandler<In>): () => void;
  /** Called once when either side closes or the transport fails. */
  onClose(handler: CloseHandler): () => void;
  close(reason?: string): void;
}

export interface FrameEndpointOptions {
  /** Tags this receiver accepts (INBOUND_TAGS.x); default every known tag. */
  accept?: ReadonlySet<string>;
  /** Where rejections and handler failures are reported; default console.warn. */
  log?: (line: string) => void;
  /**
   * Accepting side of a network link: until `markAuthenticated()` (acceptHello's welcome), the
   * first rejected frame is answered and the connection closed, so a peer without the token
   * cannot keep a socket busy with garbage.
   */
  isStrictUntilAuthenticated?: boolean;
}

/** How a listener hears about the outcome of an accepted connection's handshake. */
export interface HandshakeAdmission {
  onAuthenticated(): void;
  /** Returns how long to wait before answering the refusal (slows down token guessing). */
  onFailedHandshake(): number;
}

/** Messages queued before authentication on a strict endpoint; more closes it. */
const MAX_QUEUED_BEFORE_AUTHENTICATION = 4;
/** Messages kept while no handler is registered; beyond this the oldest are dropped. */
const MAX_QUEUED_MESSAGES = 65_536;
/** Rejected frames in a row after which we stop answering and close (two confused peers). */
const MAX_CONSECUTIVE_REJECTS = 10_000;

/** Base of the framed transports: subclasses move bytes, this class does the rest. */
export abstract class FrameEndpoint<Out extends Message = Message, In extends Message = Message>
  implements Endpoint<Out, In>
{
  private readonly messageHandlers = new Set<MessageHandler<In>>();
  private readonly closeHandlers = new Set<CloseHandler>();
  private readonly queued: Array<[In, Tensor[]]> = [];
  private closeReason: string | undefined;
  private consecutiveRejects = 0;
  private isFlushScheduled = false;
  private readonly isStrictUntilAuthenticated: boolean;
  /** True once the handshake succeeded (set by acceptHello). */
  isAuthenticated = false;
  /** Set by a listener that admits unauthenticated connections (see ConnectionGate). */
  admission: HandshakeAdmission | undefined;
  protected readonly log: (line: string) => void;
  protected readonly accept: ReadonlySet<string> | undefined;
  /** Rejected frames so far (tests and metrics). */
  numRejectedFrames = 0;

  constructor(
    readonly name: string,
    options: FrameEndpointOptions = {},
  ) {
    this.log = options.log ?? ((line) => console.warn(line));
    this.accept = options.accept;
    this.isStrictUntilAuthenticated = options.isStrictUntilAuthenticated ?? false;
  }

  /** The peer proved it knows the token; transports may lift pre-authentication limits. */
  markAuthenticated(): void {
    this.isAuthenticated = true;
    this.admission?.onAuthenticated();
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  post(message: Out, tensors: readonly Tensor[] = []): void {
    if (this.isClosed) return;
    this.transmit(message, tensors);
  }

  /** Sends raw bytes as one frame, unchecked (relays; tests of malformed input). */
  sendFrame(frame: Uint8Array): void {
    if (!this.isClosed) this.transmitFrame(frame);
  }

  onMessage(handler: MessageHandler<In>): () => void {
    this.messageHandlers.add(handler);
    if (this.queued.length) this.scheduleFlush();
    return () => this.messageHandlers.delete(handler);
  }

  onClose(handler: CloseHandler): () => void {
    if (this.closeReason !== undefined) {
      const reason = this.closeReason;
      queueMicrotask(() => handler(reason));
    } else {
      this.closeHandlers.add(handler);
    }
    return () => this.closeHandlers.delete(handler);
  }

  close(reason = 'closed locally'): void {
    if (this.isClosed) return;
    this.closeTransport();
    this.transportClosed(reason);
  }

  /** Default: one contiguous frame. Transports that can write a list of buffers override. */
  protected transmit(message: Out, tensors: readonly Tensor[]): void {
    this.transmitFrame(encodeFrame(message, tensors, this.encodeOptions()));
  }

  protected encodeOptions(): Parameters<typeof encodeFrame>[2] {
    return {};
  }

  protected decodeOptions(): DecodeOptions {
    return { accept: this.accept };
  }

  protected abstract transmitFrame(frame: Uint8Array): void;
  protected abstract closeTransport(): void;

  /** Transports call this for every incoming binary frame. */
  protected receiveFrame(frame: Uint8Array): void {
    if (this.isClosed) return;
    const result: DecodeResult = decodeFrame(frame, this.decodeOptions());
    if (result.ok) {
      this.consecutiveRejects = 0;
      this.deliver(result.message as In, result.tensors);
    } else {
      this.reject(result.error.code, result.error.message, result.error.tag);
    }
  }

  /** Answers a frame we could not use; never answers an error with an error. */
  protected reject(code: ProtocolError['code'], detail: string, tag?: string): void {
    this.numRejectedFrames++;
    this.log(`protocol: rejected frame from ${this.name}: ${code}: ${escapeForLog(detail, 200)}`);
    if (this.isClosed) return;
    if (this.isStrictUntilAuthenticated && !this.isAuthenticated) {
      if (tag !== 'protocolError')
        this.transmit({ tag: 'protocolError', code, message: detail.slice(0, 256) } as Out, []);
      this.close(`rejected frame before authentication (${code})`);
      return;
    }
    if (tag === 'protocolError') return;
    if (++this.consecutiveRejects > MAX_CONSECUTIVE_REJECTS) {
      this.close(`${MAX_CONSECUTIVE_REJECTS} rejected frames in a row`);
      return;
    }
    const reply: ProtocolError = { tag: 'protocolError', code, message: detail.slice(0, 4096) };
    if (tag !== undefined) reply.rejectedTag = tag.slice(0, 256);
    this.transmit(reply as Out, []);
  }

  /** Hands a decoded message to the handlers (or the queue while there are none). */
  protected deliver(message: In, tensors: Tensor[]): void {
    if (this.messageHandlers.size === 0 || this.queued.length) {
      if (
        this.isStrictUntilAuthenticated &&
        !this.isAuthenticated &&
        this.queued.length >= MAX_QUEUED_BEFORE_AUTHENTICATION
      ) {
        this.close(`more than ${MAX_QUEUED_BEFORE_AUTHENTICATION} messages before authentication`);
        return;
      }
      if (this.queued.length >= MAX_QUEUED_MESSAGES) {
        this.log(`protocol: ${this.name}: no handler, dropping oldest queued message`);
        this.queued.shift();
      }
      this.queued.push([message, tensors]);
      if (this.messageHandlers.size) this.scheduleFlush();
      return;
    }
    this.dispatch(message, tensors);
  }

  private dispatch(message: In, tensors: Tensor[]): void {
    for (const handler of [...this.messageHandlers]) {
      try {
        handler(message, tensors);
      } catch (error) {
        // A receiver never dies of one message; the application sees it in the log.
        this.log(`protocol: ${this.name}: handler for ${message.tag} threw: ${String(error)}`);
      }
    }
  }

  private scheduleFlush(): void {
    if (this.isFlushScheduled) return;
    this.isFlushScheduled = true;
    queueMicrotask(() => {
      this.isFlushScheduled = false;
      while (this.queued.length && this.messageHandlers.size) {
        const [message, tensors] = this.queued.shift()!;
        this.dispatch(message, tensors);
      }
    });
  }

  /** Transports call this when the connection is gone (either side). Idempotent. */
  protected transportClosed(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    for (const handler of [...this.closeHandlers]) {
      try {
        handler(reason);
      } catch (error) {
        this.log(`protocol: ${this.name}: close handler threw: ${String(error)}`);
      }
    }
    this.closeHandlers.clear();
  }
}
