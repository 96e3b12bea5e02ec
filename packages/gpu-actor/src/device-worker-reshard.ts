/**
 * A device worker's switch to its other layout: runs its part of the re-shard plan over the
 * weight mesh, then builds the new shard's device (forward pass with the layout's TP group, a KV
 * cache sized by the same memory rule as loading, viewed from the worker's KV arena so no switch
 * allocates a fresh cache) and the reshardDone figures. The caller has
 * already flushed its kv-store puts and dropped the old device.
 */
import { Checkpoint, type ModelConfig, type ShardPosition, type ShardSpec, shardSpec } from '@seesaw/model';
import type { LoadShard, Reshard, ReshardDone } from '@seesaw/protocol';
import type { DeviceLayouts, LayoutLinks } from './device-worker-layouts.ts';
import { DeviceOutOfMemoryError, shardKvCacheBytes, shardWeightBytes } from './device-worker-memory.ts';
import type { HeldWeights } from './held-weights.ts';
import type { HostWeightCache } from './host-weight-cache.ts';
import type { KvCacheArena } from './kv-cache-arena.ts';
import type { ModelWeights } from './model-weights.ts';
import { executeReshard } from './reshard-executor.ts';
import type { StepDevice, StepDeviceFactory } from './step-device.ts';
import { type WeightArena, weightArenaBytesFor } from './weight-arena.ts';

export interface SwitchedShard {
  config: ModelConfig;
  device: StepDevice;
  spec: ShardSpec;
  weights: ModelWeights;
  held: HeldWeights;
  layout: number;
  links: LayoutLinks;
  /** reshardDone without ms (the caller times the whole switch). */
  done: Omit<ReshardDone, 'ms'>;
}

/** What a worker keeps from one layout to the next instead of making it anew each switch. */
export interface SwitchKeeps {
  /** The KV cache's bytes (kv-cache-arena.ts). */
  kvArena?: KvCacheArena;
  /** Each layout's shard in host memory (host-weight-cache.ts); without it host pieces are checkpoint reads. */
  hostWeights?: HostWeightCache;
  /** The weights' memory (weight-arena.ts): the new shard is built in the old one's pages. */
  weightArena?: WeightArena;
}

/** Throws unless `layout`'s links fit the new stage: a previous link unless first, a next one unless last. */
function checkStageLinks(spec: ShardSpec, layout: number, links: LayoutLinks): void {
  if (!spec.isFirstStage && !links.links.previous)
    throw new Error(`layout ${layout}: stage ${spec.ppStage} has no link to the previous stage`);
  if (!spec.isLastStage && !links.links.next)
    throw new Error(`layout ${layout}: stage ${spec.ppStage} has no link to the next stage`);
}

function samePosition(a: ShardPosition, b: ShardPosition): boolean {
  return a.tp === b.tp && a.tpRank === b.tpRank && a.pp === b.pp && a.ppStage === b.ppStage;
}

/**
 * Runs the switch. Everything that can be checked up front (whose plan it is, where it starts,
 * the new layout's links and group, the peak against the memory budget) is checked before
 * `retire` drops the current device: a refused reshard leaves the device serving as before.
 */
export async function switchLayout(
  message: Reshard,
  load: LoadShard,
  layouts: DeviceLayouts,
  current: ShardPosition,
  retire: () => { weights: ModelWeights; held: HeldWeights },
  createDevice: StepDeviceFactory,
  kept: SwitchKeeps = {},
): Promise<SwitchedShard> {
  const { plan, layout, reshardId } = message;
  if (layouts.localDevice !== undefined && plan.device !== layouts.localDevice) {
    throw new Error(
      `reshard ${reshardId}: the plan is device ${plan.device}'s, this is device ${layouts.localDevice}`,
    );
  }
  if (!samePosition(plan.from, current)) {
    throw new Error(
      `reshard ${reshardId}: the plan starts from ${JSON.stringify(plan.from)}, this device is at ${JSON.stringify(current)}`,
    );
  }
  if (plan.peakWeightBytes > load.deviceMemoryBytes) {
    throw new DeviceOutOfMemoryError(
      `reshard ${reshardId}: the switch holds up to ${plan.peakWeightBytes} bytes of weights, more than the device's ${load.deviceMemoryBytes}`,
    );
  }
  const checkpoint = Checkpoint.open(load.modelDir);
  try {
    const config = checkpoint.config;
    const spec = shardSpec(config, plan.to);
    const links = layouts.links(layout);
    checkStageLinks(spec, layout, links);
    const group = layouts.group(layout, plan.to.tp, plan.to.tpRank);
    const { kvArena, hostWeights, weightArena } = kept;
    let mark = performance.now();
    // Filled at load when loadShard named the other layout's position; else the first switch
    // into a layout fills its shard in (a checkpoint read, once); later ones copy.
    const isHostFilled = hostWeights !== undefined && !hostWeights.has(plan.to);
    if (isHostFilled) hostWeights.fill(checkpoint, plan.to);
    const hostFillMs = performance.now() - mark;
    // Old and new shard side by side at the worst unit, as the plan computed: grown once, then reused.
    weightArena?.reserve(weightArenaBytesFor(plan.peakWeightBytes));
    const old = retire();
    const io = { ...layouts.reshardIo(reshardId, checkpoint), hostWeights, weightArena };
    const outcome = await executeReshard(config, plan, old, io);
    mark = performance.now();
    // Sized by the rule loading sizes a layout's cache by (the shard's bytes as the checkpoint
    // stores them), so a layout's cache is the same after every switch as its device announced
    // at load (Ready.otherLayoutNumKvBlocks) and its touched-ahead pages are its blocks. Quantized
    // weights held in memory can be smaller than stored; the KV budget stays on the safe side.
    const kvCacheBytes = shardKvCacheBytes(config, spec, load, shardWeightBytes(checkpoint, spec));
    const device = await createDevice(config, outcome.weights, {
      numThreads: load.numThreads,
      kvCacheBytes,
      blockSize: load.blockSize,
      kvDtype: load.kvDtype,
      group,
      kvArena,
    });
    const done: Omit<ReshardDone, 'ms'> = {
      tag: 'reshardDone',
      reshardId,
      numKvBlocks: device.numKvBlocks,
      weightBytes: device.weightBytes,
      kvCacheBytes: device.kvCacheBytes,
      bytesKept: outcome.bytesKept,
      bytesReceived: outcome.bytesReceived,
      bytesSent: outcome.bytesSent,
      bytesFromHost: outcome.bytesFromHost,
      peakWeightBytes: outcome.peakWeightBytes,
      ...outcome.phaseMs,
      ...(isHostFilled ? { hostFillMs } : {}),
      createDeviceMs: performance.now() - mark,
      arenaFallbacks: outcome.arenaFallbacks,
    };
    if (message.isWeightDigestReturned) done.weightDigest = outcome.held.digest();
    return { config, device, spec, weights: outcome.weights, held: outcome.held, layout, links, done };
  } finally {
    checkpoint.close();
  }
}
