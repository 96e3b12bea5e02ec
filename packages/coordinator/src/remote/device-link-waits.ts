/**
 * Where a running job waits for its devices' links: a host agent dials back one link per device
 * (naming job and device in its first message), the daemon routes it here, and the job's wait for
 * that device resolves with it. A wait times out on its own; a job that ends cancels its waits;
 * a link nobody waits for is closed with the reason.
 */
interface Closable {
  close(reason: string): void;
}

interface Waiting<Link> {
  resolve: (link: Link) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class DeviceLinkWaits<Link extends Closable> {
  private readonly waiting = new Map<string, Waiting<Link>>();

  get numWaiting(): number {
    return this.waiting.size;
  }

  /** Device `device`'s link for job `jobId`, or a rejection after `timeoutMs`. */
  expect(jobId: number, device: number, timeoutMs: number): Promise<Link> {
    const key = `${jobId}/${device}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`job ${jobId}: device ${device} did not connect within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, { resolve, reject, timer });
    });
  }

  /** Rejects every wait of job `jobId` with `reason`. */
  cancel(jobId: number, reason: string): void {
    for (const [key, wait] of [...this.waiting]) {
      if (!key.startsWith(`${jobId}/`)) continue;
      clearTimeout(wait.timer);
      this.waiting.delete(key);
      wait.reject(new Error(`job ${jobId}: ${reason}`));
    }
  }

  /** Hands `link` to the job waiting for it, or closes it when none is. */
  route(jobId: number, device: number, link: Link): void {
    const key = `${jobId}/${device}`;
    const wait = this.waiting.get(key);
    if (!wait) {
      link.close(`no job ${jobId} waits for device ${device}`);
      return;
    }
    clearTimeout(wait.timer);
    this.waiting.delete(key);
    wait.resolve(link);
  }
}
