/**
 * The worker hosts joined to the coordinator daemon: their control links, device counts, devices
 * in use, and liveness. Heartbeats go both ways every interval; a host silent past the deadline,
 * or whose link closes, is dropped and its loss listeners run (so running jobs fail fast).
 */

import type { CoordinatorToHostAgent, Endpoint, HostAgentToCoordinator } from '@seesaw/protocol';
import { escapeForLog } from '@seesaw/protocol';

export type HostLink = Endpoint<CoordinatorToHostAgent, HostAgentToCoordinator>;

export interface JoinedHost {
  readonly name: string;
  readonly numDevices: number;
  busyDevices: number;
  readonly link: HostLink;
  lastHeardMs: number;
  /** Where peer agents link to this host's devices; absent: only whole replicas go here. */
  readonly peerUrl?: string;
}

export type HostLossListener = (host: string, reason: string) => void;

export class HostRegistry {
  private readonly hosts = new Map<string, JoinedHost>();
  private readonly lossListeners = new Set<HostLossListener>();
  private readonly timer: NodeJS.Timeout;
  private numHeartbeats = 0;
  /** Host errors about jobs (agentJobError), by job id. */
  readonly jobErrorListeners = new Map<number, (host: string, message: string) => void>();
  /** Ends of the jobs whose client left and whose devices are being given back. */
  private readonly releases = new Set<Promise<void>>();
  /** Placements waiting for a job to start giving its devices back (waitForRelease). */
  private readonly releaseWaiters = new Set<() => void>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly onHostLost: (host: string, reason: string) => void,
    intervalMs: number,
    private readonly timeoutMs: number,
  ) {
    this.timer = setInterval(() => this.beat(), intervalMs);
  }

  get list(): JoinedHost[] {
    return [...this.hosts.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): JoinedHost | undefined {
    return this.hosts.get(name);
  }

  /** Adds a host whose agentJoin arrived; a name already joined is refused (returns a reason). */
  join(name: string, numDevices: number, link: HostLink, peerUrl?: string): string | undefined {
    if (this.hosts.has(name)) return `host name ${name} is already joined`;
    const host: JoinedHost = {
      name,
      numDevices,
      busyDevices: 0,
      link,
      lastHeardMs: Date.now(),
      ...(peerUrl ? { peerUrl } : {}),
    };
    this.hosts.set(name, host);
    link.onMessage((message) => {
      host.lastHeardMs = Date.now();
      if (message.tag === 'agentJobError') this.jobErrorListeners.get(message.jobId)?.(name, message.message);
    });
    link.onClose((reason) => this.drop(host, `link closed: ${reason}`));
    this.log(`coordinator: host ${escapeForLog(name)} joined with ${numDevices} devices`);
    return undefined;
  }

  /** Counts a job's devices as being given back until `released` settles. */
  trackRelease(released: Promise<void>): void {
    this.releases.add(released);
    void released.finally(() => this.releases.delete(released));
    for (const wake of [...this.releaseWaiters]) wake();
  }

  /**
   * Whether devices are being given back, waiting up to `waitMs` for a job to start giving its
   * back when none is (then await pendingReleases). A boolean, not the promise itself: an async
   * function returning a promise would settle only once that one did.
   */
  async waitForRelease(waitMs: number): Promise<boolean> {
    if (this.releases.size === 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.releaseWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, waitMs);
        timer.unref(); // a waiting placement does not hold a stopping coordinator's process open
        this.releaseWaiters.add(wake);
      });
    }
    return this.releases.size > 0;
  }

  /**
   * Whether devices are being given back now, and a promise of the moment they all are: a job
   * that does not fit yet may fit then (a client that closed one job and opened the next).
   */
  get pendingReleases(): Promise<void> | undefined {
    if (this.releases.size === 0) return undefined;
    return Promise.allSettled([...this.releases]).then(() => {});
  }

  /** Called with (host, reason) when a host is dropped; returns an unsubscribe function. */
  onLoss(listener: HostLossListener): () => void {
    this.lossListeners.add(listener);
    return () => this.lossListeners.delete(listener);
  }

  close(): void {
    clearInterval(this.timer);
    for (const host of this.hosts.values()) host.link.close('coordinator stopped');
    this.hosts.clear();
  }

  private drop(host: JoinedHost, reason: string): void {
    if (this.hosts.get(host.name) !== host) return;
    this.hosts.delete(host.name);
    this.log(`coordinator: host ${escapeForLog(host.name)} dropped: ${reason}`);
    this.onHostLost(host.name, reason);
    for (const listener of [...this.lossListeners]) listener(host.name, reason);
    host.link.close(reason);
  }

  private beat(): void {
    const now = Date.now();
    for (const host of [...this.hosts.values()]) {
      const silentMs = now - host.lastHeardMs;
      if (silentMs > this.timeoutMs) {
        this.drop(host, `no heartbeat for ${silentMs} ms (deadline ${this.timeoutMs} ms)`);
        continue;
      }
      host.link.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: now });
    }
  }
}
