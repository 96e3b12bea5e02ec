/**
 * Tests only: one replica (D1TtPp) of real device worker threads plus a kv-store worker thread,
 * wired by hand the way a local cluster wires them (pipeline MessageChannels TP rank r to TP
 * rank r, a shared-memory group per stage, a kv-store link per device), without the coordinator
 * package. Every device gets every step; the last stage's TP rank 0 answers, and an `error` from
 * any device fails the step that names it.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { KvStoreWorker } from '@seesaw/kv-store';
import { loadModelConfig } from '@seesaw/model';
import {
  type CoordinatorToDevice,
  type DeviceToCoordinator,
  INBOUND_TAGS,
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
import {
  closeTestReplica,
  type DeviceLink,
  helloDevices,
  loadShardOf,
  startTestKvStore,
} from './device-worker-test-wiring.ts';

const TOKEN = 'worker-replica-test';

export interface WorkerReplicaOptions {
  modelDir: string;
  tp: number;
  pp: number;
  blockSize: number;
  deviceMemoryBytes: number;
  /** Slots of the host KV tier (each blockSize tokens of every layer and KV head, f32). */
  numHostSlots: number;
}

interface Pending {
  resolve: (result: StepResult) => void;
  reject: (error: Error) => void;
}

export class WorkerReplica {
  /** Errors a device reported without a step that is still waiting (e.g. after its answer). */
  readonly strayErrors: string[] = [];
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly devices: DeviceLink[],
    private readonly workers: Worker[],
    private readonly kvStore: KvStoreWorker,
    readonly numKvBlocks: number,
  ) {
    devices.forEach((link, device) => {
      link.onMessage((message, tensors) => {
        if (message.tag === 'stepDone') {
          this.pending.get(message.stepId)?.resolve(stepResultOf(message, tensors));
          this.pending.delete(message.stepId);
        } else if (message.tag === 'error') {
          const text = `device ${device}: ${message.code}: ${message.message}`;
          const waiting =
            message.requestStepId === undefined ? undefined : this.pending.get(message.requestStepId);
          if (!waiting) this.strayErrors.push(text);
          waiting?.reject(new Error(text));
          if (waiting) this.pending.delete(message.requestStepId!);
        }
      });
    });
  }

  static async start(options: WorkerReplicaOptions): Promise<WorkerReplica> {
    const { tp, pp, modelDir, blockSize } = options;
    const config = loadModelConfig(modelDir);
    const kvStore = await startTestKvStore(TOKEN, config, blockSize, options.numHostSlots);
    // Device index = stage * tp + tpRank; channels[stage][rank] joins stage -> stage + 1.
    const channels = Array.from({ length: pp - 1 }, () =>
      Array.from({ length: tp }, () => new MessageChannel()),
    );
    const groups = Array.from({ length: pp }, () => (tp > 1 ? createDeviceWorkerGroup(tp) : undefined));
    const workers: Worker[] = [];
    const devices: DeviceLink[] = [];
    for (let stage = 0; stage < pp; stage++) {
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const deviceName = `test device ${stage * tp + tpRank}`;
        const { worker, endpoint } = spawnWorkerEndpoint<CoordinatorToDevice, DeviceToCoordinator>(
          deviceWorkerUrl(),
          {
            workerData: { token: TOKEN, deviceName, group: groups[stage]?.[tpRank], groupTimeoutMs: 20_000 },
            name: deviceName,
            accept: INBOUND_TAGS.deviceToCoordinator,
          },
        );
        const kvPort = new MessageChannel();
        kvStore.sendLinkPort(kvPort.port2);
        const links: DeviceWorkerLinks['seesawLinks'] = { kvStore: kvPort.port1 };
        if (stage > 0) links.previous = channels[stage - 1]![tpRank]!.port2;
        if (stage < pp - 1) links.next = channels[stage]![tpRank]!.port1;
        const transfer = [links.previous, links.next, links.kvStore].filter((p): p is MessagePort => !!p);
        worker.postMessage({ seesawLinks: links } satisfies DeviceWorkerLinks, transfer);
        workers.push(worker);
        devices.push(endpoint);
      }
    }
    await helloDevices(devices, TOKEN);
    const readies = await Promise.all(
      devices.map(async (link, device) => {
        const answer = new Promise<number>((resolve, reject) => {
          const off = link.onMessage((message) => {
            if (message.tag === 'ready') resolve(message.numKvBlocks);
            else if (message.tag === 'error') reject(new Error(`device ${device}: ${message.message}`));
            else return;
            off();
          });
        });
        link.post(loadShardOf(config, { tp, pp }, device, options));
        return answer;
      }),
    );
    return new WorkerReplica(devices, workers, kvStore, Math.min(...readies));
  }

  execute(batch: StepBatch): Promise<StepResult> {
    const answer = new Promise<StepResult>((resolve, reject) =>
      this.pending.set(batch.stepId, { resolve, reject }),
    );
    for (const link of this.devices) link.post({ tag: 'step', batch });
    return answer;
  }

  close(): Promise<void> {
    return closeTestReplica(this.devices, this.workers, this.kvStore);
  }
}
