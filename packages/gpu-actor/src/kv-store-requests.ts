/**
 * A device's request/answer channel to its host's kv-store: every request goes out under a
 * fresh request id and resolves with the store's answer to that id (a tensor for kvData). A
 * protocolError (a rejected frame carries no request id) or a closed link fails every request
 * outstanding, rather than leaving a step waiting forever.
 */
import type { DeviceToKvStore, KvStoreToDevice, Tensor } from '@seesaw/protocol';
import type { KvStoreLinkEndpoint } from './kv-store-link.ts';

/** The device's requests that the store answers by request id. */
export type KvRequest = Extract<DeviceToKvStore, { requestId: number }>;

interface PendingRequest {
  resolve: (tensor: Tensor | undefined) => void;
  reject: (error: Error) => void;
}

const ANSWER_TAGS: ReadonlySet<string> = new Set([
  'kvPutDone',
  'kvData',
  'kvError',
  'kvCopyDone',
  'kvCacheShared',
]);

export class KvStoreRequests {
  private nextRequestId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private closedReason: string | undefined;

  constructor(private readonly link: KvStoreLinkEndpoint) {
    link.onMessage((message, tensors) => this.answer(message, tensors));
    link.onClose((reason) => {
      this.closedReason = reason;
      this.failAll(new Error(`kv-store link closed: ${reason}`));
    });
  }

  /**
   * Posts `message` under a fresh request id; resolves with the answer's tensor (if any), rejects
   * with the store's error prefixed by `what`.
   */
  send(what: string, message: KvRequest, tensor?: Tensor): Promise<Tensor | undefined> {
    if (this.closedReason !== undefined)
      return Promise.reject(new Error(`${what}: kv-store link closed: ${this.closedReason}`));
    const requestId = this.nextRequestId++;
    return new Promise<Tensor | undefined>((resolve, reject) => {
      this.pending.set(requestId, {
        resolve,
        reject: (error) => reject(new Error(`${what}: ${error.message}`)),
      });
      this.link.post({ ...message, requestId }, tensor ? [tensor] : []);
    });
  }

  close(reason: string): void {
    this.link.close(reason);
  }

  private failAll(error: Error): void {
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
  }

  private answer(message: KvStoreToDevice, tensors: Tensor[]): void {
    if (message.tag === 'protocolError') {
      this.failAll(new Error(`kv-store rejected a ${message.rejectedTag ?? 'frame'}: ${message.message}`));
      return;
    }
    if (!ANSWER_TAGS.has(message.tag) || !('requestId' in message)) return;
    const request = this.pending.get(message.requestId);
    if (!request) return;
    this.pending.delete(message.requestId);
    if (message.tag === 'kvError') request.reject(new Error(`kv-store: ${message.message}`));
    else if (message.tag === 'kvData') {
      // Copy: the tensor may view a frame buffer that is reused after this callback.
      const tensor = tensors[0];
      request.resolve(tensor && { ...tensor, data: tensor.data.slice() });
    } else request.resolve(undefined);
  }
}
