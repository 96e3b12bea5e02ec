/**
 * A coordinator and two host agents for the cross-host Seesaw tests: in two network namespaces
 * joined by a veth pair where the machine allows it, else as two agents on loopback (host-b
 * then listens for peer links on its own port).
 */
import { coordinatorUrl, type ProcessGroup, type Started, waitForHosts } from './remote-cluster-support.ts';
import { TwoHostNetwork, whyNoNamespaces } from './two-host-network.ts';

export interface TwoHostCluster {
  url: string;
  coordinator: Started;
  hostA: Started;
  hostB: Started;
}

export class TwoHostPlacement {
  readonly net: TwoHostNetwork;
  /** Why namespaces are unavailable (then loopback), or undefined. */
  readonly noNamespaces: string | undefined;
  readonly listen: string;
  readonly inA: string[];
  readonly inB: string[];
  /** host-b's extra worker flags (its peer-link listener on loopback). */
  readonly peerB: string[];

  /** prefix and subnetByte keep each suite's namespaces apart from the others running at once. */
  constructor(prefix: string, subnetByte: number) {
    this.net = new TwoHostNetwork(prefix, subnetByte);
    this.noNamespaces = whyNoNamespaces(`seesaw-${prefix}probe-${process.pid % 100_000}`);
    this.listen = this.noNamespaces ? '127.0.0.1' : this.net.addrA;
    this.inA = this.noNamespaces ? [] : this.net.inA;
    this.inB = this.noNamespaces ? [] : this.net.inB;
    this.peerB = this.noNamespaces ? ['--peer-listen', '127.0.0.1:0'] : [];
  }

  /** For the suite's title. */
  get where(): string {
    return this.noNamespaces
      ? `two agents on loopback (no namespaces: ${this.noNamespaces})`
      : 'two network namespaces joined by a veth pair';
  }

  /** Creates the namespaces (afresh) when there are any. */
  createNetwork(): void {
    if (this.noNamespaces) return;
    this.net.destroy();
    this.net.create();
  }

  destroyNetwork(): void {
    if (!this.noNamespaces) this.net.destroy();
  }

  /** The coordinator in host A and agents host-a, host-b of `devicesPerHost` each, both joined. */
  async startCluster(
    group: ProcessGroup,
    tokenFile: string,
    devicesPerHost: number,
  ): Promise<TwoHostCluster> {
    const coordinator = group.start(
      ['coordinator', '--listen', `${this.listen}:0`, '--token-file', tokenFile],
      this.inA,
    );
    const url = await coordinatorUrl(coordinator);
    const agent = (name: string, prefix: string[], extra: string[]) =>
      group.start(
        [
          'worker',
          '--connect',
          url,
          '--devices',
          String(devicesPerHost),
          '--token-file',
          tokenFile,
          '--name',
          name,
          ...extra,
        ],
        prefix,
      );
    const hostA = agent('host-a', this.inA, []);
    const hostB = agent('host-b', this.inB, this.peerB);
    await waitForHosts(url, ['host-a', 'host-b'], this.inA);
    return { url, coordinator, hostA, hostB };
  }
}
