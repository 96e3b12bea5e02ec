/**
 * A view of a long-lived link whose handlers can all be removed at once. A device keeps one
 * kv-store link for its whole life but builds a new KvStoreSwapper (new KV cache, new layers x
 * heads) at every re-shard; each swapper subscribes to its link for good, so without a view the
 * old swappers, and through them the old KV caches, would stay reachable from the link forever.
 */
import type { Endpoint, Message, Tensor } from '@seesaw/protocol';

export class DetachableLink<Out extends Message, In extends Message> implements Endpoint<Out, In> {
  private readonly unsubscribers: Array<() => void> = [];
  private isDetached = false;

  constructor(private readonly link: Endpoint<Out, In>) {}

  get name(): string {
    return this.link.name;
  }

  get isClosed(): boolean {
    return this.link.isClosed;
  }

  post(message: Out, tensors?: readonly Tensor[]): void {
    if (!this.isDetached) this.link.post(message, tensors);
  }

  onMessage(handler: (message: In, tensors: Tensor[]) => void): () => void {
    return this.track(this.link.onMessage(handler));
  }

  onClose(handler: (reason: string) => void): () => void {
    return this.track(this.link.onClose(handler));
  }

  /** Closes the underlying link (the device is stopping). */
  close(reason?: string): void {
    this.link.close(reason);
  }

  /** Removes every handler registered through this view; later posts are dropped. */
  detach(): void {
    this.isDetached = true;
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
  }

  private track(unsubscribe: () => void): () => void {
    if (this.isDetached) {
      unsubscribe();
      return () => {};
    }
    this.unsubscribers.push(unsubscribe);
    return unsubscribe;
  }
}
