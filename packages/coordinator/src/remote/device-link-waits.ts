/**
 * Where a running job waits for its devices' links: a host agent dials back one link per device
 * (naming job and device in its first message), the daemon routes it here, and the job's wait for
 * that device resolves with it. A wait times out on its own; a job that ends cancels its waits;
 * a link nobody waits for is closed with the reason.
 */
import { PendingReplies } from '../cluster/pending-replies.ts';

interface Closable {
  close(reason: string): void;
}

export class DeviceLinkWaits<Link extends Closable> {
  /** By `${jobId}/${device}`. */
  private readonly waits = new PendingReplies<Link, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  get numWaiting(): number {
    return this.waits.ids().length;
  }

  /** Device `device`'s link for job `jobId`, or a rejection after `timeoutMs`. */
  expect(jobId: number, device: number, timeoutMs: number): Promise<Link> {
    const key = `${jobId}/${device}`;
    const link = this.waits.expect(key);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.waits.reject(
        key,
        new Error(`job ${jobId}: device ${device} did not connect within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    this.timers.set(key, timer);
    return link;
  }

  /** Rejects every wait of job `jobId` with `reason`. */
  cancel(jobId: number, reason: string): void {
    for (const key of this.waits.ids()) {
      if (!key.startsWith(`${jobId}/`)) continue;
      this.stopTimer(key);
      this.waits.reject(key, new Error(`job ${jobId}: ${reason}`));
    }
  }

  /** Hands `link` to the job waiting for it, or closes it when none is. */
  route(jobId: number, device: number, link: Link): void {
    const key = `${jobId}/${device}`;
    if (!this.waits.settle(key, link)) {
      link.close(`no job ${jobId} waits for device ${device}`);
      return;
    }
    this.stopTimer(key);
  }

  private stopTimer(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }
}
