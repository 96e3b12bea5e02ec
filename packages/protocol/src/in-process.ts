/**
 * A connected pair of endpoints inside one process. By default every message is encoded
 * and decoded exactly as on a wire, so validation and tensor layout are exercised; with
 * `isEncoded: false` the receiver gets the sender's own objects (no copy, no validation;
 * neither side may mutate them afterwards) for fast single-process clusters.
 * Delivery is asynchronous (setImmediate) and ordered, like a real transport.
 */

import { FrameEndpoint, type FrameEndpointOptions } from './endpoint.ts';
import type { Message } from './messages/index.ts';
import type { Tensor } from './tensor.ts';

export interface InProcessPairOptions {
  /** Where rejections are reported; default console.warn. */
  log?: (line: string) => void;
  /** Tags each end accepts: [a's inbound, b's inbound] (INBOUND_TAGS.x); default all. */
  accepts?: [ReadonlySet<string> | undefined, ReadonlySet<string> | undefined];
  /** Encode and validate every message (default true). */
  isEncoded?: boolean;
  /** Names of the two ends for logs. */
  names?: [string, string];
}

type Delivery =
  | { kind: 'frame'; frame: Uint8Array }
  | { kind: 'object'; message: Message; tensors: Tensor[] }
  | { kind: 'close'; reason: string };

export class InProcessEndpoint<
  Out extends Message = Message,
  In extends Message = Message,
> extends FrameEndpoint<Out, In> {
  private peer: InProcessEndpoint<In, Out> | undefined;
  private readonly inbox: Delivery[] = [];
  private isDrainScheduled = false;

  constructor(
    name: string,
    options: FrameEndpointOptions,
    private readonly isEncoded: boolean,
  ) {
    super(name, options);
  }

  /** @internal wires the two ends together. */
  connect(peer: InProcessEndpoint<In, Out>): void {
    this.peer = peer;
  }

  protected override transmit(message: Out, tensors: readonly Tensor[]): void {
    if (this.isEncoded) super.transmit(message, tensors);
    else this.peer?.enqueue({ kind: 'object', message, tensors: [...tensors] });
  }

  protected transmitFrame(frame: Uint8Array): void {
    this.peer?.enqueue({ kind: 'frame', frame });
  }

  protected closeTransport(): void {
    this.peer?.enqueue({ kind: 'close', reason: 'closed by peer' });
  }

  private enqueue(delivery: Delivery): void {
    this.inbox.push(delivery);
    if (this.isDrainScheduled) return;
    this.isDrainScheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.isDrainScheduled = false;
    // Take what is here now; messages posted by handlers go to the next turn.
    for (const delivery of this.inbox.splice(0)) {
      if (delivery.kind === 'frame') this.receiveFrame(delivery.frame);
      else if (delivery.kind === 'object') {
        if (!this.isClosed) this.deliver(delivery.message as In, delivery.tensors);
      } else this.transportClosed(delivery.reason);
    }
  }
}

/** Two connected endpoints: what `a` posts, `b` receives, and back. */
export function createInProcessPair<AOut extends Message = Message, BOut extends Message = Message>(
  options: InProcessPairOptions = {},
): [InProcessEndpoint<AOut, BOut>, InProcessEndpoint<BOut, AOut>] {
  const [nameA, nameB] = options.names ?? ['in-process a', 'in-process b'];
  const isEncoded = options.isEncoded ?? true;
  const a = new InProcessEndpoint<AOut, BOut>(
    nameA,
    { log: options.log, accept: options.accepts?.[0] },
    isEncoded,
  );
  const b = new InProcessEndpoint<BOut, AOut>(
    nameB,
    { log: options.log, accept: options.accepts?.[1] },
    isEncoded,
  );
  a.connect(b);
  b.connect(a);
  return [a, b];
}
