/**
 * A device worker's swaps through the host's kv-store actor (a local cluster's host KV tier).
 * Each rank moves exactly its own box: its pipeline stage's layers x its TP rank's KV heads, so
 * the ranks of a replica together move every layer and head of a sequence, each over its own
 * link, without talking to each other.
 *
 * Slot ids: the coordinator's scheduler allots them and they ride in every kvPut / kvGet
 * (KvSliceAddress.slotIds), so the store keeps no allocator of its own for device traffic and
 * no rank needs to mirror anyone's accounting. A swap-out is never released on the store: the
 * scheduler simply hands the slots out again, and the next put overwrites them.
 *
 * Ordering: a rank runs its steps in order and each link delivers in order, so a swap-in reads
 * what this rank's own earlier swap-out put. Puts are awaited before the step's compute (the
 * swapped-out blocks may be overwritten by it), and gets are scattered before it.
 */
import type { MessagePort } from 'node:worker_threads';
import { gatherSequenceKv, scatterSequenceKv } from '@seesaw/kv-store';
import {
  connectAndHello,
  type DeviceToKvStore,
  INBOUND_TAGS,
  type KvStoreToDevice,
  type Range,
  type StepBatch,
  type StepKvSwap,
  type Tensor,
  WorkerPortEndpoint,
} from '@seesaw/protocol';
import type { PagedKvCache } from './paged-kv-cache.ts';

export type KvStoreLinkEndpoint = WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>;

/** The kv-store may still be starting (tsx compiles its worker). */
const KV_STORE_HANDSHAKE_TIMEOUT_MS = 60_000;

/** Opens this device's link to the host's kv-store and says hello as a device. */
export async function openKvStoreLink(
  port: MessagePort,
  options: { deviceName: string; token: string },
): Promise<KvStoreLinkEndpoint> {
  const link = new WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>(
    port,
    `${options.deviceName} -> kv-store`,
    { accept: INBOUND_TAGS.kvStoreToDevice },
  );
  await connectAndHello(link, {
    role: 'device',
    name: options.deviceName,
    token: options.token,
    timeoutMs: KV_STORE_HANDSHAKE_TIMEOUT_MS,
  });
  return link;
}

interface PendingRequest {
  resolve: (tensor: Tensor | undefined) => void;
  reject: (error: Error) => void;
}

export class KvStoreSwapper {
  private nextRequestId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private closedReason: string | undefined;

  /**
   * `layers` and `kvHeads` are this shard's global ranges; the cache holds them as local
   * layers 0.. and heads 0.. .
   */
  constructor(
    private readonly link: KvStoreLinkEndpoint,
    private readonly cache: PagedKvCache,
    private readonly layers: Range,
    private readonly kvHeads: Range,
  ) {
    link.onMessage((message, tensors) => this.answer(message, tensors));
    link.onClose((reason) => {
      this.closedReason = reason;
      for (const request of this.pending.values())
        request.reject(new Error(`kv-store link closed: ${reason}`));
      this.pending.clear();
    });
  }

  /** Swap-outs first (their blocks may be reused by this step), then swap-ins; throws on any failure. */
  async apply(step: StepBatch): Promise<void> {
    const swapOuts = step.swapOuts ?? [];
    const swapIns = step.swapIns ?? [];
    await Promise.all(swapOuts.map((swap) => this.swapOut(swap)));
    const slices = await Promise.all(swapIns.map((swap) => this.fetch(swap)));
    swapIns.forEach((swap, i) => {
      scatterSequenceKv(
        this.cache.keys,
        this.cache.values,
        swap.blockIds,
        swap.numTokens,
        this.cache.layout,
        this.localHeads(),
        slices[i]!,
      );
    });
  }

  close(reason: string): void {
    this.link.close(reason);
  }

  private async swapOut(swap: StepKvSwap): Promise<void> {
    this.checkShape(swap, 'swap-out');
    const tensor = gatherSequenceKv(
      this.cache.keys,
      this.cache.values,
      swap.blockIds,
      swap.numTokens,
      this.cache.layout,
      this.localHeads(),
    );
    await this.request('swap-out', swap, 'kvPut', tensor);
  }

  private async fetch(swap: StepKvSwap): Promise<Tensor> {
    this.checkShape(swap, 'swap-in');
    const tensor = await this.request('swap-in', swap, 'kvGet');
    const expected = [
      this.layers.end - this.layers.start,
      2,
      this.kvHeads.end - this.kvHeads.start,
      swap.numTokens,
      this.cache.layout.headDim,
    ];
    if (!tensor) throw new Error(`swap-in of sequence ${swap.seqId}: kv-store sent no tensor`);
    const isExpected =
      tensor.dtype === 'f32' &&
      tensor.shape.length === 5 &&
      tensor.shape.every((dim, i) => dim === expected[i]);
    if (!isExpected)
      throw new Error(
        `swap-in of sequence ${swap.seqId}: kv-store sent ${tensor.dtype} [${tensor.shape}], expected f32 [${expected}]`,
      );
    return tensor;
  }

  private request(
    what: string,
    swap: StepKvSwap,
    tag: 'kvPut' | 'kvGet',
    tensor?: Tensor,
  ): Promise<Tensor | undefined> {
    if (this.closedReason !== undefined)
      return Promise.reject(
        new Error(`${what} of sequence ${swap.seqId}: kv-store link closed: ${this.closedReason}`),
      );
    const requestId = this.nextRequestId++;
    return new Promise<Tensor | undefined>((resolve, reject) => {
      this.pending.set(requestId, {
        resolve,
        reject: (error) => reject(new Error(`${what} of sequence ${swap.seqId}: ${error.message}`)),
      });
      const message: DeviceToKvStore = {
        tag,
        requestId,
        seqId: swap.seqId,
        layers: { ...this.layers },
        heads: { ...this.kvHeads },
        tokens: { start: 0, end: swap.numTokens },
        slotIds: [...swap.slotIds],
      };
      this.link.post(message, tensor ? [tensor] : []);
    });
  }

  private answer(message: KvStoreToDevice, tensors: Tensor[]): void {
    if (message.tag === 'protocolError') {
      // A rejected frame has no request id: fail everything outstanding rather than hang.
      const error = new Error(`kv-store rejected a ${message.rejectedTag ?? 'frame'}: ${message.message}`);
      for (const request of this.pending.values()) request.reject(error);
      this.pending.clear();
      return;
    }
    if (message.tag !== 'kvPutDone' && message.tag !== 'kvData' && message.tag !== 'kvError') return;
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

  private localHeads(): Range {
    return { start: 0, end: this.cache.layout.numKvHeads };
  }

  private checkShape(swap: StepKvSwap, what: string): void {
    const numBlocks = Math.ceil(swap.numTokens / this.cache.layout.blockSize);
    if (!(swap.numTokens >= 1) || swap.blockIds.length !== numBlocks || swap.slotIds.length !== numBlocks)
      throw new RangeError(
        `${what} of sequence ${swap.seqId}: ${swap.numTokens} tokens need ${numBlocks} blocks and slots, got ${swap.blockIds.length} and ${swap.slotIds.length}`,
      );
  }
}
