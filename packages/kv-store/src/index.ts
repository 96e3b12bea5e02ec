export {
  HostKvAllocator,
  type HostKvAllocatorOptions,
  type ReleaseResult,
  type ReserveResult,
} from './host-kv-allocator.ts';
export {
  boxShape,
  checkRange,
  type HostKvLayout,
  hostKvLayoutFor,
  type KvDType,
  type KvSliceBox,
  slotBytes,
  slotElements,
} from './host-kv-layout.ts';
export { type GetResult, HostKvStore, type HostKvStoreOptions, type StoreResult } from './host-kv-store.ts';
export {
  type KvForward,
  type KvForwardingSpec,
  KvForwardingTable,
  type KvReplicaLayout,
} from './kv-forwarding-table.ts';
export { KvStoreActor, type KvStoreActorOptions } from './kv-store-actor.ts';
export type { KvStoreCounters } from './kv-store-counters.ts';
export { KV_STORE_INBOUND_TAGS, type KvStoreLink } from './kv-store-link.ts';
export type { KvStoreWorkerData } from './kv-store-worker-data.ts';
export {
  type GatherOptions,
  gatherSequenceKv,
  type KvCacheArray,
  type PagedKvLayout,
  type SequenceKvOptions,
  scatterSequenceKv,
} from './paged-kv-transfer.ts';
export {
  type SharedKvCache,
  type SharedKvCacheGeometry,
  viewSharedKvCache,
} from './shared-kv-cache.ts';
export { type KvStoreWorker, spawnKvStoreWorker } from './spawn-kv-store-worker.ts';
