/**
 * The pipeline links of one device worker: a direct MessagePort per neighbouring stage, over
 * which hidden states [numTokens][hidden] f32 travel without passing through the coordinator.
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import {
  acceptHello,
  connectAndHello,
  type DeviceToDevice,
  INBOUND_TAGS,
  WorkerPortEndpoint,
} from '@seesaw/protocol';
import type { DeviceWorkerLinks } from './device-worker-data.ts';
import { EndpointGroup } from './endpoint-group.ts';

export type LinkEndpoint = WorkerPortEndpoint<DeviceToDevice, DeviceToDevice>;

/** Link handshakes wait for a peer that may still be starting (tsx compiles the worker). */
export const LINK_HANDSHAKE_TIMEOUT_MS = 60_000;

/** Resolves with the links the coordinator posts on the Worker's own port after spawning it. */
export function receiveLinks(): Promise<DeviceWorkerLinks['seesawLinks']> {
  const port = parentPort;
  if (!port) throw new Error('device worker: not in a worker thread');
  return new Promise((resolve) => {
    port.once('message', (value: DeviceWorkerLinks) => {
      // Only the coordinator's endpoint port keeps the thread alive from here on.
      port.unref();
      resolve(value?.seesawLinks ?? {});
    });
  });
}

export function linkEndpoint(port: MessagePort, name: string): LinkEndpoint {
  return new WorkerPortEndpoint<DeviceToDevice, DeviceToDevice>(port, name, {
    accept: INBOUND_TAGS.deviceToDevice,
  });
}

export interface OpenedLinks {
  previous?: LinkEndpoint;
  next?: LinkEndpoint;
}

/**
 * Opens both links with the usual hello: this stage connects to the next one and accepts the
 * previous one, both proving the cluster token.
 */
export async function openLinks(
  links: DeviceWorkerLinks['seesawLinks'],
  options: { deviceName: string; token: string; log: (line: string) => void },
): Promise<OpenedLinks> {
  const opened: OpenedLinks = {};
  const tasks: Promise<unknown>[] = [];
  if (links.previous) {
    const previous = linkEndpoint(links.previous, `${options.deviceName} <- previous stage`);
    opened.previous = previous;
    tasks.push(
      acceptHello(previous, {
        role: 'device',
        name: options.deviceName,
        expectedToken: options.token,
        allowedRoles: ['device'],
        log: options.log,
        timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS,
      }),
    );
  }
  if (links.next) {
    const next = linkEndpoint(links.next, `${options.deviceName} -> next stage`);
    opened.next = next;
    tasks.push(
      connectAndHello(next, {
        role: 'device',
        name: options.deviceName,
        token: options.token,
        timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS,
      }),
    );
  }
  await Promise.all(tasks);
  return opened;
}

interface Waiter {
  resolve: (hidden: Float32Array) => void;
  reject: (error: Error) => void;
}

/**
 * Hidden states from the previous stage, by step id. They arrive in step order, but a step's
 * message from the coordinator and its activations race, so either may come first.
 */
export class ActivationInbox {
  /** Arrived before anyone asked; an Error for activations that could not be used. */
  private readonly arrived = new Map<number, Float32Array | Error>();
  private readonly waiters = new Map<number, Waiter>();
  private closedReason: string | undefined;

  constructor(
    link: LinkEndpoint,
    private readonly hiddenSize: number,
  ) {
    link.onMessage((message, tensors) => {
      if (message.tag !== 'activations') return;
      const tensor = tensors[0];
      const data = tensor.data;
      const isUsable =
        tensor.dtype === 'f32' && data instanceof Float32Array && tensor.shape[1] === hiddenSize;
      const value = isUsable
        ? data
        : new Error(`activations of step ${message.stepId}: expected f32 [T][${this.hiddenSize}]`);
      const waiter = this.waiters.get(message.stepId);
      if (!waiter) {
        this.arrived.set(message.stepId, value);
        return;
      }
      this.waiters.delete(message.stepId);
      if (value instanceof Error) waiter.reject(value);
      else waiter.resolve(value);
    });
    link.onClose((reason) => {
      this.closedReason = reason;
      for (const [stepId, waiter] of this.waiters) {
        waiter.reject(new Error(`link to the previous stage closed before step ${stepId}: ${reason}`));
      }
      this.waiters.clear();
    });
  }

  /** The hidden state [numTokens][hidden] for `stepId`, once it has come. */
  take(stepId: number): Promise<Float32Array> {
    const hidden = this.arrived.get(stepId);
    if (hidden) {
      this.arrived.delete(stepId);
      return hidden instanceof Error ? Promise.reject(hidden) : Promise.resolve(hidden);
    }
    if (this.closedReason !== undefined) {
      return Promise.reject(new Error(`link to the previous stage is closed: ${this.closedReason}`));
    }
    return new Promise((resolve, reject) => this.waiters.set(stepId, { resolve, reject }));
  }
}

/**
 * A TP group over message links (its ranks span hosts): an EndpointGroup whose peer r talks over
 * tpPeers[r]. Links to other hosts are relayed by the agents; the frames are the same.
 */
export function openPeerGroup(
  size: number,
  rank: number,
  tpPeers: ReadonlyArray<MessagePort | undefined>,
  deviceName: string,
): { group: EndpointGroup; endpoints: LinkEndpoint[] } {
  if (tpPeers.length !== size) throw new Error(`TP ${size} needs ${size} peer slots, got ${tpPeers.length}`);
  const peers = tpPeers.map((port, r) => {
    if (r === rank) return undefined;
    if (!port) throw new Error(`TP rank ${rank} of ${size} has no link to rank ${r}`);
    return linkEndpoint(port, `${deviceName} <-> tp rank ${r}`);
  });
  return {
    group: new EndpointGroup(rank, peers),
    endpoints: peers.filter((peer): peer is LinkEndpoint => peer !== undefined),
  };
}
