/**
 * The re-shard family of the coordinator <-> device link: `reshard` switches a device to its
 * other parallel layout; the device answers `reshardDone` with what the switch cost.
 */

import type { DeviceReshardPlanData } from './reshard-plan-data.ts';

/**
 * Switch to another parallel layout (re-shard). Sent only when every step sent to the device
 * has answered; the device answers reshardDone once its own kv-store puts are acknowledged and
 * its new weights, links and KV cache are in place.
 */
export interface Reshard {
  tag: 'reshard';
  /** Coordinator-chosen id echoed in reshardDone and carried by the weightSlice messages. */
  reshardId: number;
  /** Index of the layout to switch to (0 prefill, 1 decode); the device got both at spawn/load. */
  layout: number;
  /** This device's part of the ReshardPlan (planReshard of @seesaw/model), plain data. */
  plan: DeviceReshardPlanData;
  /** Return ReshardDone.weightDigest: sha256 hex over the held weights in canonical order. */
  isWeightDigestReturned?: boolean;
}

/** A reshard finished: the device now runs the new layout. Byte counts are raw checkpoint bytes. */
export interface ReshardDone {
  tag: 'reshardDone';
  /** Reshard.reshardId answered. */
  reshardId: number;
  /** KV blocks of the new KV cache. */
  numKvBlocks: number;
  /** Bytes of weights held now. */
  weightBytes: number;
  /** Bytes of the new KV cache. */
  kvCacheBytes: number;
  bytesKept: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
  /** Largest weights held at once during the switch. */
  peakWeightBytes: number;
  /** Wall time of the switch on this device. */
  ms: number;
  /** Start and end of the switch on the device's own clock (epoch ms, see DeviceSpan). */
  startMs?: number;
  endMs?: number;
  /** sha256 hex over the held weights in canonical order, when Reshard asked for it. */
  weightDigest?: string;
  // Where the switch's time went on this device, ms (gpu-actor ReshardPhaseMs):
  /** Cutting and posting sends. */
  sendMs?: number;
  /** Awaiting peers' pieces. */
  waitMs?: number;
  /** Copying pieces into the new matrices. */
  assembleMs?: number;
  /** The rest of the executor: freeing old units, re-encoding quantized blocks, yields. */
  otherMs?: number;
  /** Filling the host weight cache with the target layout's shard; present only when this switch did. */
  hostFillMs?: number;
  /** Building the new shard's device (forward pass, KV cache view). */
  createDeviceMs?: number;
  /** Weight-arena requests that did not fit and took fresh memory. */
  arenaFallbacks?: number;
}
