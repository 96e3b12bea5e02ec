/**
 * Endpoints over worker_threads MessagePorts. Each frame is one ArrayBuffer, transferred
 * (not copied) to the other thread. SharedRegions registered with shareRegion() let large
 * tensors cross as descriptors only.
 *
 * A dedicated MessageChannel per link (spawnWorkerEndpoint / parentWorkerEndpoint) rather
 * than the Worker's own port: closing a MessagePort closes both ends, which gives both
 * sides a close event without terminating the thread.
 */

import { pathToFileURL } from 'node:url';
import {
  MessageChannel,
  type MessagePort,
  Worker,
  type WorkerOptions,
  workerData,
} from 'node:worker_threads';
import type { EncodeOptions } from './codec.ts';
import { FrameEndpoint, type FrameEndpointOptions } from './endpoint.ts';
import type { Message } from './messages/index.ts';
import { SharedRegion } from './shared-region.ts';
import type { DecodeOptions } from './validate.ts';

/** Out-of-band control object on the port (not a frame): announces a shared region. */
interface RegionAnnouncement {
  seesawRegion: number;
  buffer: SharedArrayBuffer;
}

function isRegionAnnouncement(value: unknown): value is RegionAnnouncement {
  return (
    typeof value === 'object' &&
    value !== null &&
    Number.isInteger((value as RegionAnnouncement).seesawRegion) &&
    (value as RegionAnnouncement).buffer instanceof SharedArrayBuffer
  );
}

export class WorkerPortEndpoint<
  Out extends Message = Message,
  In extends Message = Message,
> extends FrameEndpoint<Out, In> {
  private readonly regionsById = new Map<number, SharedArrayBuffer>();
  private readonly regionIds = new Map<SharedArrayBuffer, number>();

  constructor(
    private readonly port: MessagePort,
    name: string,
    options: FrameEndpointOptions = {},
  ) {
    super(name, options);
    port.on('message', (data: unknown) => this.receivePortMessage(data));
    port.on('close', () => this.transportClosed('port closed'));
    port.on('messageerror', (error) =>
      this.reject('badHeader', `undeserialisable port message: ${String(error)}`),
    );
  }

  /**
   * Makes a region usable by both sides: tensors whose data lies in it are then posted as
   * descriptors. Regions announced by the peer are registered on arrival. Announcing an id again
   * with another buffer replaces the region on both sides (the old buffer is forgotten, so a
   * grown buffer does not keep the one it replaced alive).
   */
  shareRegion(region: SharedRegion): void {
    this.registerRegion(region.id, region.buffer);
    this.port.postMessage({ seesawRegion: region.id, buffer: region.buffer } satisfies RegionAnnouncement);
  }

  /** A region the peer shared with us, wrapped for slicing (undefined until announced). */
  peerRegion(id: number): SharedRegion | undefined {
    const buffer = this.regionsById.get(id);
    return buffer ? new SharedRegion(id, buffer) : undefined;
  }

  protected override encodeOptions(): EncodeOptions {
    return { regionIdOf: (buffer) => this.regionIds.get(buffer) };
  }

  protected override decodeOptions(): DecodeOptions {
    return { accept: this.accept, regionById: (id) => this.regionsById.get(id) };
  }

  /** Transfers the frame's buffer when the frame spans all of it; copies otherwise. */
  protected transmitFrame(frame: Uint8Array): void {
    const buffer = frame.buffer;
    const isWhole =
      buffer instanceof ArrayBuffer && frame.byteOffset === 0 && frame.byteLength === buffer.byteLength;
    const owned = isWhole ? (buffer as ArrayBuffer) : frame.slice().buffer;
    this.port.postMessage(owned, [owned]);
  }

  protected closeTransport(): void {
    this.port.close();
  }

  private registerRegion(id: number, buffer: SharedArrayBuffer): void {
    const replaced = this.regionsById.get(id);
    if (replaced && replaced !== buffer) this.regionIds.delete(replaced);
    this.regionsById.set(id, buffer);
    this.regionIds.set(buffer, id);
  }

  private receivePortMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) this.receiveFrame(new Uint8Array(data));
    else if (isRegionAnnouncement(data)) this.registerRegion(data.seesawRegion, data.buffer);
    else this.reject('badHeader', 'port message is neither a frame nor a region announcement');
  }
}

/** workerData key under which the spawned worker finds its end of the link. */
const PORT_KEY = 'seesawPort';

export interface SpawnWorkerOptions extends FrameEndpointOptions {
  /** Extra workerData for the worker (the port is added under 'seesawPort'). */
  workerData?: Record<string, unknown>;
  /** Node flags for the worker. A .ts/.mts entry needs none: see TS_WORKER_ENTRY. */
  execArgv?: string[];
  name?: string;
  resourceLimits?: WorkerOptions['resourceLimits'];
}

/**
 * Plain-JS bootstrap that registers tsx and imports workerData.seesawEntry: on Node 20,
 * `--import tsx` in execArgv does not reach a Worker's entry module.
 */
const TS_WORKER_ENTRY = new URL('./ts-worker-entry.mjs', import.meta.url);

/**
 * A Worker running `url`, with .ts/.mts entries started through tsx (see TS_WORKER_ENTRY).
 * For workers that talk plain postMessage rather than through an endpoint.
 */
export function startWorker(url: URL | string, options: WorkerOptions = {}): Worker {
  const entry = url instanceof URL ? url : pathToFileURL(url);
  const isTypeScript = /\.m?ts$/.test(entry.pathname);
  if (!isTypeScript) return new Worker(entry, options);
  return new Worker(TS_WORKER_ENTRY, {
    ...options,
    workerData: { ...(options.workerData as Record<string, unknown>), seesawEntry: entry.href },
  });
}

/**
 * Starts a Worker and returns the endpoint talking to it; the endpoint closes when it exits.
 * `url` is a file URL (or path); .ts/.mts workers run through tsx (a dev dependency).
 */
export function spawnWorkerEndpoint<Out extends Message = Message, In extends Message = Message>(
  url: URL | string,
  options: SpawnWorkerOptions = {},
): { worker: Worker; endpoint: WorkerPortEndpoint<Out, In> } {
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker(url, {
    workerData: { ...options.workerData, [PORT_KEY]: port2 },
    transferList: [port2],
    execArgv: options.execArgv,
    resourceLimits: options.resourceLimits,
  });
  const endpoint = new WorkerPortEndpoint<Out, In>(
    port1,
    options.name ?? `worker ${worker.threadId}`,
    options,
  );
  worker.on('exit', (code) => endpoint.close(`worker exited with code ${code}`));
  worker.on('error', (error) => endpoint.close(`worker failed: ${String(error)}`));
  return { worker, endpoint };
}

/** Inside a worker started by spawnWorkerEndpoint: the endpoint talking to the parent. */
export function parentWorkerEndpoint<Out extends Message = Message, In extends Message = Message>(
  options: FrameEndpointOptions & { name?: string } = {},
): WorkerPortEndpoint<Out, In> {
  const port = (workerData as Record<string, unknown> | null)?.[PORT_KEY] as MessagePort | undefined;
  if (!port) throw new Error('parentWorkerEndpoint: not in a worker started by spawnWorkerEndpoint');
  return new WorkerPortEndpoint<Out, In>(port, options.name ?? 'parent', options);
}
