/**
 * Tests only: one replica of real device worker threads that can run under two layouts (0 and
 * 1, e.g. D1T1P2 and D1T2P1), wired by hand the way a phased local cluster wires them: per
 * layout a shared-memory TP group per stage and pipeline MessageChannels TP rank r to TP rank r,
 * plus a full mesh of MessageChannels for weight pieces. Local device i is the same worker in
 * both layouts; its position in a layout is (stage, tpRank) = (i div tp, i mod tp). Every device
 * gets every step; the current layout's last stage, TP rank 0, answers.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { KvStoreWorker } from '@seesaw/kv-store';
import {
  type DeviceReshardPlan,
  loadModelConfig,
  type ParallelConfig,
  parseParallelConfig,
  type ReshardPlan,
} from '@seesaw/model';
import {
  type CoordinatorToDevice,
  type DeviceToCoordinator,
  INBOUND_TAGS,
  type Ready,
  type ReshardDone,
  type StepBatch,
  type StepResult,
  spawnWorkerEndpoint,
  stepResultOf,
} from '@seesaw/protocol';
import {
  createDeviceWorkerGroup,
  type DeviceWorkerLinks,
  deviceWorkerUrl,
} from '../src/device-worker-data.ts';
import type { SharedMemoryGroupDescriptor } from '../src/shared-memory-group.ts';
import {
  closeTestReplica,
  type DeviceLink,
  helloDevices,
  loadShardOf,
  startTestKvStore,
} from './device-worker-test-wiring.ts';

const TOKEN = 'phased-replica-test';

type LayoutPorts = { previous?: MessagePort; next?: MessagePort };

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

export interface PhasedWorkerReplicaOptions {
  modelDir: string;
  /** Layout 0 (loaded first) and layout 1, e.g. ['D1T1P2', 'D1T2P1']. */
  layouts: [string, string];
  blockSize: number;
  deviceMemoryBytes: number;
  /** With it, a kv-store worker of this many slots is the host KV tier and every device links to it. */
  numHostSlots?: number;
  /** Devices keep each layout's shard in a host weight cache (workerData.hostWeightCache). */
  hostWeightCache?: boolean;
}

/** Per layout: group descriptors [device] and pipeline ports [device]. */
function wireLayout(parallel: ParallelConfig, numDevices: number) {
  const { tp, pp } = parallel;
  const groups = Array.from({ length: pp }, () => (tp > 1 ? createDeviceWorkerGroup(tp) : undefined));
  const ports: LayoutPorts[] = Array.from({ length: numDevices }, () => ({}));
  const descriptors: Array<SharedMemoryGroupDescriptor | undefined> = [];
  for (let device = 0; device < numDevices; device++) {
    const stage = Math.floor(device / tp);
    const tpRank = device % tp;
    descriptors.push(groups[stage]?.[tpRank]);
    if (stage < pp - 1) {
      const { port1, port2 } = new MessageChannel();
      ports[device]!.next = port1;
      ports[device + tp]!.previous = port2;
    }
  }
  return { descriptors, ports };
}

export class PhasedWorkerReplica {
  /** `error` messages that no waiting request claimed. */
  readonly strayErrors: string[] = [];
  private readonly steps = new Map<number, Waiter<StepResult>>();
  private readonly reshards = new Map<string, Waiter<ReshardDone>>();
  private readonly readies = new Map<number, Waiter<Ready>>();
  layout = 0;

  private constructor(
    readonly layouts: [ParallelConfig, ParallelConfig],
    private readonly devices: DeviceLink[],
    private readonly workers: Worker[],
    private readonly options: PhasedWorkerReplicaOptions,
    private readonly kvStore: KvStoreWorker | undefined,
  ) {
    devices.forEach((link, device) => {
      link.onMessage((message, tensors) => {
        if (message.tag === 'stepDone') {
          this.steps.get(message.stepId)?.resolve(stepResultOf(message, tensors));
          this.steps.delete(message.stepId);
        } else if (message.tag === 'ready') {
          this.readies.get(device)?.resolve(message);
          this.readies.delete(device);
        } else if (message.tag === 'reshardDone') {
          const key = `${message.reshardId}/${device}`;
          this.reshards.get(key)?.resolve(message);
          this.reshards.delete(key);
        } else if (message.tag === 'error') this.fail(device, message);
      });
    });
  }

  get numDevices(): number {
    return this.devices.length;
  }

  static async start(options: PhasedWorkerReplicaOptions): Promise<PhasedWorkerReplica> {
    const layouts = options.layouts.map(parseParallelConfig) as [ParallelConfig, ParallelConfig];
    const numDevices = layouts[0].tp * layouts[0].pp;
    const wired = layouts.map((parallel) => wireLayout(parallel, numDevices));
    const mesh = Array.from({ length: numDevices }, () =>
      new Array<MessagePort | undefined>(numDevices).fill(undefined),
    );
    for (let i = 0; i < numDevices; i++)
      for (let j = i + 1; j < numDevices; j++) {
        const { port1, port2 } = new MessageChannel();
        mesh[i]![j] = port1;
        mesh[j]![i] = port2;
      }
    const kvStore =
      options.numHostSlots === undefined
        ? undefined
        : await startTestKvStore(
            TOKEN,
            loadModelConfig(options.modelDir),
            options.blockSize,
            options.numHostSlots,
          );
    const workers: Worker[] = [];
    const devices: DeviceLink[] = [];
    for (let device = 0; device < numDevices; device++) {
      const deviceName = `test device ${device}`;
      const layoutGroups = wired.map((layout) => layout.descriptors[device]);
      const { worker, endpoint } = spawnWorkerEndpoint<CoordinatorToDevice, DeviceToCoordinator>(
        deviceWorkerUrl(),
        {
          workerData: {
            token: TOKEN,
            deviceName,
            group: layoutGroups[0],
            layoutGroups,
            groupTimeoutMs: 20_000,
            hostWeightCache: options.hostWeightCache ?? false,
          },
          name: deviceName,
          accept: INBOUND_TAGS.deviceToCoordinator,
        },
      );
      const links: DeviceWorkerLinks['seesawLinks'] = {
        layouts: wired.map((layout) => layout.ports[device]!),
        reshardPeers: mesh[device],
      };
      if (kvStore) {
        const kvPort = new MessageChannel();
        kvStore.sendLinkPort(kvPort.port2);
        links.kvStore = kvPort.port1;
      }
      const transfer = [
        links.kvStore,
        ...wired.flatMap((layout) => [layout.ports[device]!.previous, layout.ports[device]!.next]),
        ...mesh[device]!,
      ].filter((p): p is MessagePort => !!p);
      worker.postMessage({ seesawLinks: links } satisfies DeviceWorkerLinks, transfer);
      workers.push(worker);
      devices.push(endpoint);
    }
    await helloDevices(devices, TOKEN);
    return new PhasedWorkerReplica(layouts, devices, workers, options, kvStore);
  }

  /** Loads layout 0 on every device; resolves with each device's ready. */
  load(isWeightDigestReturned: boolean): Promise<Ready[]> {
    const config = loadModelConfig(this.options.modelDir);
    const { tp, pp } = this.layouts[0];
    return Promise.all(
      this.devices.map((link, device) => {
        const ready = new Promise<Ready>((resolve, reject) => this.readies.set(device, { resolve, reject }));
        const load = loadShardOf(config, { tp, pp }, device, { ...this.options, isWeightDigestReturned });
        // As LocalCluster does: the other layout's position, for the host weight cache.
        const other = this.layouts[1];
        load.otherLayoutPosition = {
          tp: other.tp,
          tpRank: device % other.tp,
          pp: other.pp,
          ppStage: Math.floor(device / other.tp),
        };
        link.post(load);
        return ready;
      }),
    );
  }

  /** Sends each device its part of `plan` (a switch to `layout`); resolves with every reshardDone. */
  async reshard(reshardId: number, layout: number, plan: ReshardPlan, isWeightDigestReturned: boolean) {
    const done = await Promise.all(
      this.devices.map((link, device) => {
        const answer = new Promise<ReshardDone>((resolve, reject) =>
          this.reshards.set(`${reshardId}/${device}`, { resolve, reject }),
        );
        link.post({ tag: 'reshard', reshardId, layout, plan: plan.devices[device]!, isWeightDigestReturned });
        return answer;
      }),
    );
    this.layout = layout;
    return done;
  }

  /** Posts a reshard to one device only, with its part of `plan` or `part` (tests of refusals). */
  postReshard(
    device: number,
    reshardId: number,
    layout: number,
    plan: ReshardPlan,
    part: DeviceReshardPlan = plan.devices[device]!,
  ): Promise<ReshardDone> {
    const answer = new Promise<ReshardDone>((resolve, reject) =>
      this.reshards.set(`${reshardId}/${device}`, { resolve, reject }),
    );
    this.devices[device]!.post({ tag: 'reshard', reshardId, layout, plan: part });
    return answer;
  }

  /** Posts a step (to every device, or to `devices` only) and resolves with its answer. */
  execute(batch: StepBatch, devices: Iterable<number> = this.devices.keys()): Promise<StepResult> {
    const answer = new Promise<StepResult>((resolve, reject) =>
      this.steps.set(batch.stepId, { resolve, reject }),
    );
    this.postStep(batch, devices);
    return answer;
  }

  /** Posts a step to some devices only; execute() waits for the answer (tests of ordering). */
  postStep(batch: StepBatch, devices: Iterable<number>): void {
    for (const device of devices) this.devices[device]!.post({ tag: 'step', batch });
  }

  close(): Promise<void> {
    return closeTestReplica(this.devices, this.workers, this.kvStore);
  }

  private fail(device: number, message: Extract<DeviceToCoordinator, { tag: 'error' }>): void {
    const error = new Error(`device ${device}: ${message.code}: ${message.message}`);
    if (message.requestStepId !== undefined && this.steps.has(message.requestStepId)) {
      this.steps.get(message.requestStepId)!.reject(error);
      this.steps.delete(message.requestStepId);
      return;
    }
    const pending = [...this.reshards.entries()].find(([key]) => key.endsWith(`/${device}`));
    const load = this.readies.get(device);
    if (pending) {
      pending[1].reject(error);
      this.reshards.delete(pending[0]);
    } else if (load) {
      load.reject(error);
      this.readies.delete(device);
    } else this.strayErrors.push(error.message);
  }
}
