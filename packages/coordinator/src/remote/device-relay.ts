/**
 * One device worker of a host agent and its link to the coordinator: the worker thread is spawned
 * here, a WebSocket to the coordinator is opened and authenticated, announced with deviceChannel,
 * and from then on every message is passed through unchanged in both directions (the coordinator's
 * hello, loadShard, steps and heartbeats to the worker; its answers back). Either side closing
 * ends both: a closed link terminates the worker, an exited worker closes the link.
 */
import type { Worker } from 'node:worker_threads';
import {
  connectAndHello,
  connectWebSocket,
  type DeviceWorkerData,
  type DeviceWorkerLinkPorts,
  type Endpoint,
  INBOUND_TAGS,
  linkTransferList,
  type Message,
  spawnWorkerEndpoint,
} from '@seesaw/protocol';

/** The coordinator's answer to the relay's own hello, then everything a device accepts. */
const RELAY_INBOUND_TAGS: ReadonlySet<string> = new Set([
  'welcome',
  'refused',
  ...INBOUND_TAGS.coordinatorToDevice,
]);

/**
 * A device worker's links as the agent hands them over: the pipeline ports, plus, when the TP
 * group spans hosts, tpPeers[r] to TP rank r (a direct channel to a worker on this host, or the
 * agent's relay to another host).
 */
export type RemoteDeviceLinkPorts = DeviceWorkerLinkPorts;

export interface DeviceRelaySpec {
  workerUrl: URL | string;
  coordinatorUrl: string;
  /** CA (PEM) the coordinator's wss:// certificate must chain to. */
  tlsCa?: string | Buffer;
  /** Cluster token for the coordinator's hello check. */
  clusterToken: string;
  jobId: number;
  device: number;
  workerData: DeviceWorkerData;
  links: RemoteDeviceLinkPorts;
  log: (line: string) => void;
}

export class DeviceRelay {
  private isStopped = false;

  private constructor(
    readonly name: string,
    private readonly worker: Worker,
    private readonly workerLink: Endpoint<Message, Message>,
  ) {}

  /** Spawns the worker thread; the coordinator link follows with connect(). */
  static spawn(spec: DeviceRelaySpec): DeviceRelay {
    const { worker, endpoint } = spawnWorkerEndpoint<Message, Message>(spec.workerUrl, {
      workerData: { ...spec.workerData },
      name: spec.workerData.deviceName,
      accept: INBOUND_TAGS.deviceToCoordinator,
      log: spec.log,
    });
    worker.postMessage({ seesawLinks: spec.links }, linkTransferList(spec.links));
    return new DeviceRelay(spec.workerData.deviceName, worker, endpoint);
  }

  /** Opens and announces the coordinator link, then relays until either side closes. */
  async connect(spec: DeviceRelaySpec): Promise<void> {
    const link = await connectWebSocket<Message, Message>(spec.coordinatorUrl, {
      accept: RELAY_INBOUND_TAGS,
      log: spec.log,
      tlsCa: spec.tlsCa,
    });
    try {
      await connectAndHello(link, { role: 'device', name: this.name, token: spec.clusterToken });
    } catch (error) {
      void this.stop();
      throw error;
    }
    link.post({ tag: 'deviceChannel', jobId: spec.jobId, device: spec.device });
    if (this.isStopped || this.workerLink.isClosed) {
      link.close('device worker already stopped');
      return;
    }
    link.onMessage((message, tensors) => this.workerLink.post(message, tensors));
    this.workerLink.onMessage((message, tensors) => link.post(message, tensors));
    link.onClose(() => void this.stop());
    this.workerLink.onClose((reason) => link.close(`device worker stopped: ${reason}`));
  }

  /** Ends the worker (which closes the coordinator link). Idempotent. */
  async stop(): Promise<void> {
    if (this.isStopped) return;
    this.isStopped = true;
    this.workerLink.close('relay stopped');
    await this.worker.terminate();
  }
}
