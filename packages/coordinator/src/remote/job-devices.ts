/**
 * The device workers of one remote job under one device job id (the job's own id, or a fresh
 * one after a re-plan): placed on the hosts' free devices, spawned by their agents (spawnReplica),
 * attached over the links the agents relay, and given back to their hosts (releaseJob).
 */
import { randomBytes } from 'node:crypto';
import type { ParallelConfig } from '@seesaw/model';
import type { SpawnHostKv } from '@seesaw/protocol';
import { DeviceActorHandle } from '../cluster/device-actor-handle.ts';
import { DeviceLostError } from '../cluster/device-errors.ts';
import type { DeviceLink, RemoteJobContext } from './remote-job-context.ts';
import { remoteDeviceName } from './remote-replicas.ts';
import { placeDevices } from './replica-placement.ts';

/** How long the agents get to spawn their device workers and open the device links. */
const DEVICE_CHANNEL_TIMEOUT_MS = 60_000;

export interface JobDevicesSpec {
  parallel: ParallelConfig;
  /** A Seesaw job's decode layout (both layouts wired). */
  decode?: ParallelConfig;
  hostKv?: SpawnHostKv;
  /** The job's --host-weight-cache (a Seesaw job's); absent: each host decides by its free memory. */
  hostWeightCache?: 'on' | 'off';
}

/** How long a job that does not fit waits for another job to start giving devices back. */
const RELEASE_GRACE_MS = 5000;

export class JobDevices {
  readonly actors: DeviceActorHandle[] = [];
  /** Each device's relayed link and host, by device index. */
  private readonly links: DeviceLink[] = [];
  hosts: string[] = [];
  private readonly hostsUsed = new Map<string, number>();

  constructor(
    private readonly ctx: RemoteJobContext,
    readonly deviceJobId: number,
    /** Hosts the job lost: never placed on, even while the registry has not dropped them. */
    private readonly lostHosts: ReadonlySet<string>,
  ) {}

  uses(host: string): boolean {
    return this.hostsUsed.has(host);
  }

  /** 'host-a (2 devices), host-b (2 devices)' once placed. */
  get placement(): string {
    return [...this.hostsUsed].map(([name, n]) => `${name} (${n} device${n === 1 ? '' : 's'})`).join(', ');
  }

  /** Places the devices (marking them busy); host name per device. */
  async place(parallel: ParallelConfig): Promise<void> {
    this.hosts = await this.placeOnHosts(parallel.dp, parallel.tp * parallel.pp);
    for (const name of this.hosts) {
      this.ctx.registry.get(name)!.busyDevices += 1;
      this.hostsUsed.set(name, (this.hostsUsed.get(name) ?? 0) + 1);
    }
  }

  /**
   * Has the agents spawn the placed devices and attaches to each. `failure` names why the start
   * failed when a host did (rather than the link error that followed).
   */
  async spawnAndAttach(spec: JobDevicesSpec, failure: () => Error | undefined): Promise<DeviceActorHandle[]> {
    const { ctx, deviceJobId: jobId } = this;
    const { parallel, decode, hostKv } = spec;
    const { dp, tp, pp } = parallel;
    const perReplica = tp * pp;
    const deviceToken = randomBytes(24).toString('base64url');
    const links = Array.from({ length: dp * perReplica }, (_, device) =>
      ctx.expectDeviceLink(jobId, device, DEVICE_CHANNEL_TIMEOUT_MS),
    );
    for (let dpRank = 0; dpRank < dp; dpRank++) {
      const firstDevice = dpRank * perReplica;
      const replicaHosts = this.hosts.slice(firstDevice, firstDevice + perReplica);
      const spans = replicaHosts.some((name) => name !== replicaHosts[0]);
      const hostUrls = spans ? replicaHosts.map((name) => ctx.registry.get(name)!.peerUrl!) : undefined;
      for (const name of new Set(replicaHosts)) {
        const devices = replicaHosts.flatMap((host, local) => (host === name ? [local] : []));
        ctx.registry.get(name)!.link.post({
          tag: 'spawnReplica',
          jobId,
          dpRank,
          firstDevice,
          tp,
          pp,
          deviceToken,
          ...(hostUrls ? { devices, hostUrls } : {}),
          ...(hostKv ? { hostKv } : {}),
          ...(decode ? { decodeLayout: { tp: decode.tp, pp: decode.pp } } : {}),
          ...(decode && spec.hostWeightCache ? { hostWeightCache: spec.hostWeightCache } : {}),
        });
      }
    }
    const attached = await Promise.allSettled(
      links.map(async (linkPromise, device) => {
        const link = await linkPromise;
        this.links[device] = link;
        const actor = await DeviceActorHandle.attach(link, {
          name: remoteDeviceName(device, parallel, this.hosts[device]!),
          token: deviceToken,
          heartbeatIntervalMs: ctx.heartbeatIntervalMs,
          heartbeatTimeoutMs: ctx.heartbeatTimeoutMs,
        });
        this.actors[device] = actor;
        actor.onFailure((error) => {
          if (error instanceof DeviceLostError) ctx.metrics.add('deviceLostTotal');
        });
        return actor;
      }),
    );
    const failedAttach = attached.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failedAttach) throw failure() ?? failedAttach.reason;
    return this.actors;
  }

  /**
   * Closes the links of the host's devices: their handles fail with DeviceLostError (reason
   * naming the host) at once, rather than at the device heartbeat deadline.
   */
  closeHostLinks(host: string, reason: string): void {
    this.ctx.log(`coordinator: job ${this.ctx.jobId}: closing the device links of ${host}: ${reason}`);
    this.links.forEach((link, device) => {
      if (this.hosts[device] === host) link.close(reason);
    });
  }

  /** Closes the devices and gives them back to their hosts (releaseJob). Idempotent. */
  async release(mode: 'drain' | 'abort'): Promise<void> {
    const actors = this.actors.splice(0).filter((a) => a !== undefined);
    await Promise.all(actors.map((actor) => actor.close(mode)));
    this.links.length = 0;
    for (const [name, count] of this.hostsUsed) {
      const host = this.ctx.registry.get(name);
      if (!host) continue;
      host.busyDevices -= count;
      host.link.post({ tag: 'releaseJob', jobId: this.deviceJobId });
    }
    this.hostsUsed.clear();
  }

  /**
   * Host name per device. A job that does not fit while other jobs hold devices it needs is
   * placed again once they have given them back: jobs already giving them back, or one that
   * starts to within RELEASE_GRACE_MS. That grace is for a client that switched jobs: it closes
   * one connection and opens another, and the coordinator may take in the new job's open before
   * the old one's close. A job that would not fit even idle hosts fails at once.
   */
  private async placeOnHosts(dp: number, perReplica: number): Promise<string[]> {
    const place = (asIfIdle = false) => {
      const hosts = this.ctx.registry.list.filter((h) => !this.lostHosts.has(h.name));
      return placeDevices(
        hosts.map((h) => ({ name: h.name, freeDevices: h.numDevices - (asIfIdle ? 0 : h.busyDevices) })),
        dp,
        perReplica,
        hosts.every((h) => h.peerUrl !== undefined),
      );
    };
    try {
      return place();
    } catch (error) {
      try {
        place(true);
      } catch {
        throw error; // waiting cannot help; the error names the devices free now
      }
      if (!(await this.ctx.registry.waitForRelease(RELEASE_GRACE_MS))) throw error;
      await this.ctx.registry.pendingReleases;
      return place();
    }
  }
}
