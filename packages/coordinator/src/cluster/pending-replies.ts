/**
 * Requests that await an answer, by id (a device actor's step, reshard or clock probe; a job's
 * dialled-back device link):
 * each settles once, with the answer naming its id; when the actor fails, all reject with the
 * failure. An answer nobody awaits is reported to the caller (settle returns false), which
 * decides whether that is a protocol breach or a late answer to drop.
 */
interface Pending<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

export class PendingReplies<T, Id = number> {
  private readonly pending = new Map<Id, Pending<T>>();

  has(id: Id): boolean {
    return this.pending.has(id);
  }

  /** The answer to request `id`, once settle(id) hands it over (a later expect of the same id replaces it). */
  expect(id: Id): Promise<T> {
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Resolves request `id` with `value`; false when none awaits it. */
  settle(id: Id, value: T): boolean {
    const pending = this.pending.get(id);
    if (!pending) return false;
    this.pending.delete(id);
    pending.resolve(value);
    return true;
  }

  /** Rejects request `id` (a timeout); nothing when none awaits it. */
  reject(id: Id, error: Error): void {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    pending?.reject(error);
  }

  /** The ids awaiting an answer. */
  ids(): Id[] {
    return [...this.pending.keys()];
  }

  /** Rejects every request awaiting an answer. */
  rejectAll(error: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) pending.reject(error);
  }
}
