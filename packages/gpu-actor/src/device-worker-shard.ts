/**
 * The shard a device worker serves, and loading its first one: the shard is sized from the
 * checkpoint header alone (weights, then the KV cache that fits beside them) before any link is
 * opened or weight read, so a device too small fails fast; then the TP group is joined, both
 * layouts' links and the kv-store link are opened, and the stage's weights are loaded.
 */
import type { MessagePort } from 'node:worker_threads';
import { Checkpoint, type ModelConfig, type ShardPosition, type ShardSpec, shardSpec } from '@seesaw/model';
import {
  type DeviceToKvStore,
  type KvStoreToDevice,
  type LoadShard,
  parseParallelConfig,
  type Ready,
} from '@seesaw/protocol';
import { DetachableLink } from './detachable-link.ts';
import { KvStoreSwapper } from './device-kv-store-swap.ts';
import {
  DEFAULT_GROUP_TIMEOUT_MS,
  type DeviceWorkerData,
  type DeviceWorkerLinks,
} from './device-worker-data.ts';
import { DeviceLayouts } from './device-worker-layouts.ts';
import {
  type ActivationInbox,
  type LinkEndpoint,
  type OpenedLinks,
  openPeerGroup,
} from './device-worker-links.ts';
import { shardKvCacheBytes, shardWeightBytes } from './device-worker-memory.ts';
import type { SwitchedShard } from './device-worker-reshard.ts';
import { HeldWeights } from './held-weights.ts';
import { HostWeightCache } from './host-weight-cache.ts';
import { KvCacheArena } from './kv-cache-arena.ts';
import { type KvStoreLinkEndpoint, openKvStoreLink, regionSharerOf } from './kv-store-link.ts';
import { KvTouchAhead } from './kv-touch-ahead.ts';
import { loadModelWeights, type ModelWeights } from './model-weights.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import { SharedMemoryGroup } from './shared-memory-group.ts';
import type { StepDevice, StepDeviceFactory } from './step-device.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';
import { switchArenaBytes, WeightArena } from './weight-arena.ts';

export interface LoadedShard {
  device: StepDevice;
  spec: ShardSpec;
  links: OpenedLinks;
  inbox: ActivationInbox | undefined;
  /** Swaps to the host's kv-store; absent without a host KV tier. */
  swapper: KvStoreSwapper | undefined;
  /** The forward pass's weights and the raw checkpoint slices they were made of (re-sharding, digests). */
  weights: ModelWeights;
  held: HeldWeights;
  /** Which layout this shard is (0 prefill, 1 decode; 0 for a device that never re-shards). */
  layout: number;
  /** The swapper's view of the kv-store link, detached when a re-shard retires the swapper. */
  kvStoreView: DetachableLink<DeviceToKvStore, KvStoreToDevice> | undefined;
}

/** A first shard and what re-sharding it later needs. */
export interface OpenedShard {
  shard: LoadedShard;
  /** Both layouts' links and groups. */
  layouts: DeviceLayouts;
  kvStoreLink: KvStoreLinkEndpoint | undefined;
  /** The KV cache's bytes, which every later layout's cache re-views (kv-cache-arena.ts). */
  kvArena: KvCacheArena;
  /** With workerData.hostWeightCache: this device's shards in host memory, layout 0's filled at load. */
  hostWeights: HostWeightCache | undefined;
  /** The weights' memory, which every later layout's weights are built in (weight-arena.ts). */
  weightArena: WeightArena;
  ready: Ready;
}

/** What loading takes from the worker besides the loadShard message. */
export interface ShardLoadContext {
  data: DeviceWorkerData;
  /** The ports the coordinator posts after spawning the worker (receiveLinks). */
  linksArrived: Promise<DeviceWorkerLinks['seesawLinks']>;
  /** Where the links of a TP group spanning hosts are pushed as they open (closed on stop). */
  tpLinks: LinkEndpoint[];
  /** Builds the device (the worker entry's backend). */
  createDevice: StepDeviceFactory;
  log(line: string): void;
}

/** Loads the shard `load` names: layout 0's links, its TP group, its weights and device. */
export async function loadShard(load: LoadShard, ctx: ShardLoadContext): Promise<OpenedShard> {
  const { tp, pp } = parseParallelConfig(load.parallelism);
  const position: ShardPosition = { tp, tpRank: load.tpRank, pp, ppStage: load.ppStage };
  const plan = planMemory(load, position);
  const ports = await ctx.linksArrived;
  const group = tp > 1 ? joinGroup(ctx, tp, load.tpRank, ports.tpPeers) : undefined;
  const linkOptions = { deviceName: ctx.data.deviceName, token: ctx.data.token };
  const [layouts, kvStoreLink] = await Promise.all([
    DeviceLayouts.open(ports, ctx.data, {
      ...linkOptions,
      hiddenSize: plan.hiddenSize,
      log: (line) => ctx.log(line),
    }),
    ports.kvStore ? openKvStoreLink(ports.kvStore, linkOptions) : undefined,
  ]);
  layouts.setGroup(0, group);
  const { links, inbox } = layouts.links(0);
  if (!plan.spec.isFirstStage && !links.previous)
    throw new Error(`stage ${load.ppStage} has no link to the previous stage`);
  if (!plan.spec.isLastStage && !links.next)
    throw new Error(`stage ${load.ppStage} has no link to the next stage`);
  const held = new HeldWeights();
  const kvArena = new KvCacheArena();
  // Both layouts' caches in one allocation: a switch then re-views the pages prefill touched
  // instead of growing into fresh ones (first writes to fresh pages are the costly part).
  kvArena.reserve(Math.max(plan.kvCacheBytes, plan.otherKvCacheBytes));
  const weightArena = new WeightArena();
  const hostWeights = ctx.data.hostWeightCache ? new HostWeightCache() : undefined;
  const checkpoint = Checkpoint.open(load.modelDir);
  let device: StepDevice;
  let weights: ModelWeights;
  try {
    // The shard's own size: a device that never re-shards holds no slack (the few blocks beyond
    // it, raw norm slices and alignment, become chunks of their own). A Seesaw device reserves its
    // switch peak now, not at its first switch (a run often has just one), and in one reservation:
    // one chunk, whose free tail past the loaded shard holds the first switch's big new blocks
    // (an embedding), where a second chunk split that room in two that neither fitted.
    weightArena.reserve(
      load.otherLayoutPosition
        ? Math.max(plan.weightBytes, switchArenaBytes(checkpoint, position, load.otherLayoutPosition))
        : plan.weightBytes,
    );
    weights = loadModelWeights(checkpoint, plan.spec, held, weightArena);
    device = await ctx.createDevice(checkpoint.config, weights, {
      numThreads: load.numThreads,
      kvCacheBytes: plan.kvCacheBytes,
      blockSize: load.blockSize,
      kvDtype: load.kvDtype,
      group,
      kvArena,
    });
    if (hostWeights) {
      const numBytes = hostWeights.fill(checkpoint, position);
      ctx.log(`host weight cache: ${(numBytes / 2 ** 20).toFixed(1)} MiB for layout 0's shard`);
      if (load.otherLayoutPosition) {
        // Both layouts at load, as the paper's system keeps them: no switch reads the checkpoint.
        const added = hostWeights.fill(checkpoint, load.otherLayoutPosition);
        ctx.log(`host weight cache: ${(added / 2 ** 20).toFixed(1)} MiB more for layout 1's shard`);
      }
    }
  } finally {
    checkpoint.close();
  }
  const otherCache = plan.other && otherLayoutCache(device, kvArena, plan.other, load);
  // Touched ahead of its use by this layout's write-backs (kv-touch-ahead.ts).
  const touchAhead = otherCache && new KvTouchAhead(otherCache);
  const kv = kvStoreLink ? kvStoreSwapperOver(kvStoreLink, device, plan.spec, touchAhead) : undefined;
  // Settled before ready, so the first steps already swap by shared-memory copies where they can.
  await kv?.swapper.sharing;
  const shard: LoadedShard = {
    device,
    spec: plan.spec,
    links,
    inbox,
    swapper: kv?.swapper,
    kvStoreView: kv?.view,
    weights,
    held,
    layout: 0,
  };
  const ready: Ready = {
    tag: 'ready',
    numKvBlocks: device.numKvBlocks,
    weightBytes: device.weightBytes,
    kvCacheBytes: device.kvCacheBytes,
  };
  if (load.isWeightDigestReturned) ready.weightDigest = held.digest();
  if (kv) ready.hasKvStore = true;
  // The coordinator can then admit against the decode layout's capacity before the first switch.
  if (otherCache) ready.otherLayoutNumKvBlocks = otherCache.numBlocks;
  return { shard, layouts, kvStoreLink, kvArena, hostWeights, weightArena, ready };
}

/** The shard a re-shard switched to, with a fresh swapper over the same kv-store link. */
export function switchedShard(
  next: SwitchedShard,
  kvStoreLink: KvStoreLinkEndpoint | undefined,
): LoadedShard {
  const kv = kvStoreLink ? kvStoreSwapperOver(kvStoreLink, next.device, next.spec) : undefined;
  return {
    device: next.device,
    spec: next.spec,
    links: next.links.links,
    inbox: next.links.inbox,
    swapper: kv?.swapper,
    kvStoreView: kv?.view,
    weights: next.weights,
    held: next.held,
    layout: next.layout,
  };
}

/**
 * A swapper for `device`'s cache (its layers x KV heads) over a detachable view of the device's
 * one kv-store link. KvStoreSwapper only uses the Endpoint methods of its link, which the view has;
 * the cache's shared buffer is announced on the link itself (a store of this host then copies
 * KV in and out of the cache directly; after a re-shard the new swapper shares the new view).
 */
function kvStoreSwapperOver(
  link: KvStoreLinkEndpoint,
  device: StepDevice,
  spec: ShardSpec,
  touchAhead?: KvTouchAhead,
) {
  const view = new DetachableLink<DeviceToKvStore, KvStoreToDevice>(link);
  const swapper = new KvStoreSwapper(
    view as unknown as KvStoreLinkEndpoint,
    device.kvSwapTarget,
    spec.layers,
    spec.kvHeads,
    regionSharerOf(link),
    touchAhead,
  );
  return { swapper, view };
}

/** A Seesaw device's other layout: its shard and the KV cache bytes it will have. */
interface OtherLayoutCache {
  spec: ShardSpec;
  kvCacheBytes: number;
}

/**
 * The other layout's cache as a switch will view it over the same arena: sized by the rule the
 * switch sizes it by (blocks of its layers x KV heads that its KV bytes hold), so its block b is
 * the bytes the switch's block b is. Undefined unless the device's cache is a view of the arena
 * and the other one fits it as reserved.
 */
function otherLayoutCache(
  device: StepDevice,
  kvArena: KvCacheArena,
  other: OtherLayoutCache,
  load: LoadShard,
): PagedKvCache | undefined {
  const cache = device.kvSwapTarget;
  const config: ModelConfig = device.config;
  if (!(cache instanceof PagedKvCache) || !kvArena.holds(cache.keys[0]?.buffer)) return undefined;
  const cacheConfig = {
    ...config,
    numLayers: other.spec.layers.end - other.spec.layers.start,
    numKvHeads: other.spec.kvHeads.end - other.spec.kvHeads.start,
  };
  const bytesPerBlock = PagedKvCache.bytesPerBlock(cacheConfig, load.blockSize, cache.dtype);
  const numBlocks = Math.floor(other.kvCacheBytes / bytesPerBlock);
  if (numBlocks < 1 || numBlocks * bytesPerBlock > kvArena.numBytes) return undefined;
  return new PagedKvCache(cacheConfig, numBlocks, load.blockSize, cache.dtype, kvArena);
}

/**
 * Sizes the shard from the checkpoint header alone: weights, then the KV cache that fits beside
 * them. With the other layout's position (a Seesaw device), also the KV cache that layout will
 * have, so the cache's bytes can be allocated once for both (KvCacheArena.reserve).
 */
function planMemory(load: LoadShard, position: ShardPosition) {
  const checkpoint = Checkpoint.open(load.modelDir);
  try {
    const config = checkpoint.config;
    const spec = shardSpec(config, position);
    if (spec.layers.start !== load.layers.start || spec.layers.end !== load.layers.end) {
      throw new Error(
        `loadShard layers [${load.layers.start}, ${load.layers.end}) differ from this stage's ` +
          `[${spec.layers.start}, ${spec.layers.end})`,
      );
    }
    const weightBytes = shardWeightBytes(checkpoint, spec);
    const kvCacheBytes = shardKvCacheBytes(config, spec, load, weightBytes);
    let other: OtherLayoutCache | undefined;
    if (load.otherLayoutPosition) {
      const otherSpec = shardSpec(config, load.otherLayoutPosition);
      const otherWeightBytes = shardWeightBytes(checkpoint, otherSpec);
      other = { spec: otherSpec, kvCacheBytes: shardKvCacheBytes(config, otherSpec, load, otherWeightBytes) };
    }
    const otherKvCacheBytes = other?.kvCacheBytes ?? 0;
    return { spec, weightBytes, kvCacheBytes, other, otherKvCacheBytes, hiddenSize: config.hiddenSize };
  } finally {
    checkpoint.close();
  }
}

/**
 * Joins the TP group: over message links when it spans hosts (the coordinator sent tpPeers),
 * else over the shared-memory group described in workerData.
 */
function joinGroup(
  ctx: ShardLoadContext,
  tp: number,
  tpRank: number,
  tpPeers: Array<MessagePort | undefined> | undefined,
): TensorParallelGroup {
  if (tpPeers) {
    const { group, endpoints } = openPeerGroup(tp, tpRank, tpPeers, ctx.data.deviceName);
    ctx.tpLinks.push(...endpoints);
    return group;
  }
  const descriptor = ctx.data.group;
  if (!descriptor) throw new Error(`TP ${tp} needs a group descriptor in workerData`);
  if (descriptor.size !== tp || descriptor.rank !== tpRank) {
    throw new Error(
      `group descriptor is rank ${descriptor.rank} of ${descriptor.size}, expected ${tpRank} of ${tp}`,
    );
  }
  return new SharedMemoryGroup(descriptor, ctx.data.groupTimeoutMs ?? DEFAULT_GROUP_TIMEOUT_MS);
}
