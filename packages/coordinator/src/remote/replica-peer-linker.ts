/**
 * The links of one replica as one host agent makes them: a MessageChannel between two devices
 * here, an agent-to-agent peer link (relayed to a MessagePort) between a device here and one on
 * another host, nothing for two devices elsewhere. Links between the same two devices are
 * numbered in the order they are made (DeviceChannel.linkIndex); every agent of the replica
 * makes them in the same order (agent-replica-wiring.ts), so both ends name each link alike. The
 * agent of the lower global device dials, the other expects.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { LinkEnds } from '../cluster/layout-wiring.ts';
import { type AgentPeerLinks, relayPortToSocket } from './peer-links.ts';

export interface ReplicaPeerLinkerSetup {
  /** This agent's peer links; undefined when it accepts none (then nothing may cross hosts). */
  peers: AgentPeerLinks | undefined;
  jobId: number;
  firstDevice: number;
  /** Peer address of the host of each local device; absent when the replica is all here. */
  hostUrls: readonly string[] | undefined;
  /** Local indices of the devices on this host. */
  here: ReadonlySet<number>;
  /** Collects the function that ends each relay (the job's release calls them). */
  stoppers: Array<() => void>;
  /** How long to wait for a peer agent to dial a link this one expects. */
  timeoutMs: number;
}

export class ReplicaPeerLinker {
  /** Peer links being opened: all must settle before the devices start talking. */
  readonly tasks: Promise<void>[] = [];
  private readonly counts = new Map<string, number>();

  constructor(private readonly setup: ReplicaPeerLinkerSetup) {}

  /** The ports of the next link between local devices a and b, for each end here. */
  link(a: number, b: number): LinkEnds<MessagePort> {
    const { here } = this.setup;
    const linkIndex = this.nextIndex(a, b);
    if (!here.has(a) && !here.has(b)) return [undefined, undefined];
    const { port1, port2 } = new MessageChannel();
    if (here.has(a) && here.has(b)) return [port1, port2];
    const [local, remote] = here.has(a) ? [a, b] : [b, a];
    this.relay(port2, local, remote, linkIndex);
    return here.has(a) ? [port1, undefined] : [undefined, port1];
  }

  /** The next link between `local` (here) and `remote` (elsewhere), `port` being its end here. */
  linkPort(port: MessagePort, local: number, remote: number): void {
    this.relay(port, local, remote, this.nextIndex(local, remote));
  }

  /** Counts the next link between two devices elsewhere (keeps the numbering in step). */
  skip(a: number, b: number): void {
    this.nextIndex(a, b);
  }

  private nextIndex(a: number, b: number): number {
    const key = `${Math.min(a, b)},${Math.max(a, b)}`;
    const index = this.counts.get(key) ?? 0;
    this.counts.set(key, index + 1);
    return index;
  }

  private relay(port: MessagePort, local: number, remote: number, linkIndex: number): void {
    const { peers, jobId, firstDevice, hostUrls, stoppers, timeoutMs } = this.setup;
    const url = hostUrls?.[remote];
    if (!peers || !url)
      throw new Error(`device ${firstDevice + remote} is on another host, but no peer link is set up`);
    const [device, peerDevice] = [firstDevice + local, firstDevice + remote];
    const socket =
      device < peerDevice
        ? peers.dial(url, jobId, device, peerDevice, linkIndex)
        : peers.expect(jobId, peerDevice, device, timeoutMs, linkIndex);
    this.tasks.push(
      socket.then((opened) => {
        stoppers.push(
          relayPortToSocket(port, opened, `device ${device} <-> device ${peerDevice} #${linkIndex}`),
        );
      }),
    );
  }
}
