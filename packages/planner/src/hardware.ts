import type { CpuKernelProfile } from './cpu-kernel-costs.ts';

/** Bandwidth and fixed cost of one kind of transfer. */
export interface LinkProfile {
  bytesPerSecond: number;
  /** Fixed cost of one transfer or one collective, seconds. */
  latencySeconds: number;
  /**
   * When measured messages past a size see another bandwidth (NCCL changes protocol past its
   * buffer; a send through a host bridge or NIC drops from ~8 GB/s to ~2.3 GB/s past ~4 MB): the
   * bandwidth moves from `bytesPerSecond` to `bytesPerSecond` here around `fromBytes`, as steeply
   * as `sharpness` says (see linkBytesPerSecond). Absent: one bandwidth for every size.
   */
  largeMessages?: { fromBytes: number; bytesPerSecond: number; sharpness: number };
}

/**
 * The bandwidth a message of `bytes` sees: a logistic step in log size between the small- and
 * large-message bandwidths, centred on `fromBytes`. Measured transitions are not sharp (a
 * 3-6 MB band for the host-bridge send), so a smooth step fits them where a hard split cannot.
 */
export function linkBytesPerSecond(link: LinkProfile, bytes: number): number {
  const large = link.largeMessages;
  if (large === undefined) return link.bytesPerSecond;
  const smallShare = 1 / (1 + (bytes / large.fromBytes) ** large.sharpness);
  return large.bytesPerSecond + (link.bytesPerSecond - large.bytesPerSecond) * smallShare;
}

/**
 * One accelerator as the cost model sees it: datasheet (or measured) peaks and the fractions
 * of them real kernels reach. Every time in the model is bytes / (peak x efficiency) or
 * FLOPs / (peak x efficiency).
 */
export interface DeviceProfile {
  name: string;
  memoryBytes: number;
  memoryBytesPerSecond: number;
  /** fp16/bf16 dense matrix peak, FLOP/s. */
  matmulFlopsPerSecond: number;
  /** Achieved fraction of matmulFlopsPerSecond by the linear layers at large batch. */
  matmulEfficiency: number;
  /** Achieved fraction of memoryBytesPerSecond when streaming weights and KV. */
  memoryEfficiency: number;
  /** Achieved fraction of matmulFlopsPerSecond by attention. */
  attentionEfficiency: number;
  /** Share of memory the engine may take (vLLM's gpu_memory_utilization). */
  memoryUtilization: number;
  /** Memory held back for activations and workspace, bytes. */
  activationReserveBytes: number;
  /** Fixed cost of one step (launches, scheduling), seconds. */
  stepOverheadSeconds: number;
  /** Launch costs of one decoder layer's kernels, seconds (fitted GPU profiles; absent: 0). */
  layerLaunchSeconds?: number;
  /**
   * Sampling cost per logit of each sampled row (temperature sampling scans and sorts the
   * vocabulary), seconds. 0 for the GPU presets (folded into the step overhead there); the
   * CPU engine samples on the host, which `seesaw profile` measures.
   */
  sampleSecondsPerLogit?: number;
  /** Bytes of one activation or cached K/V element when not the weights' width (the CPU engine computes in f32: 4). */
  computeBytesPerElement?: number;
  /**
   * Measured CPU kernel rates (`seesaw profile`). When present a layer costs the sum of its
   * kernels at these rates instead of the GPU roofline max(weights, FLOPs) + max(KV, attention).
   */
  cpuKernels?: CpuKernelProfile;
  /** Host memory <-> this device (KV swaps, weight reloads). */
  hostLink: LinkProfile;
  /**
   * Host KV tier puts and gets by the engine's path when measured apart from hostLink (the CPU
   * engine asks the host's kv-store worker, which copies between its slots and the device
   * cache's shared memory; `seesaw profile` times that path).
   */
  kvTransferLink?: LinkProfile;
  /** Reading re-shard pieces from the host's copy of the checkpoint, when measured apart from hostLink. */
  reshardHostLink?: LinkProfile;
  /**
   * A re-shard's assembly of the new shard's tensors on the device (bytes = the new shard), when
   * measured (`seesaw profile`; absent: not charged).
   */
  reshardWeightAssembly?: LinkProfile;
  /**
   * Bytes/s of a first write into memory never touched (page faults and zeroing), when measured
   * (`seesaw profile`; absent: not charged): what the CPU engine pays the first time it writes
   * each KV cache block of a layout (kv-first-touch.ts).
   */
  kvFirstTouchBytesPerSecond?: number;
}

/** N devices of one kind, devicesPerHost to a host. */
export interface ClusterProfile {
  name: string;
  device: DeviceProfile;
  numHosts: number;
  devicesPerHost: number;
  /** Device <-> device inside a host: p2p copies and the all-reduce ring. */
  intraHostLink: LinkProfile;
  /** Between hosts (network). */
  interHostLink: LinkProfile;
  /** Re-shard weight pieces device -> device inside a host, when measured apart from intraHostLink. */
  reshardPeerLink?: LinkProfile;
  /** Host RAM per device for the CPU KV tier, bytes. */
  hostMemoryBytesPerDevice: number;
}

const GiB = 1024 ** 3;

/** Common efficiency factors for data-centre GPUs under a vLLM-class engine. */
const GPU_EFFICIENCY = {
  matmulEfficiency: 0.6,
  memoryEfficiency: 0.8,
  attentionEfficiency: 0.4,
  memoryUtilization: 0.9,
  activationReserveBytes: 1 * GiB,
  stepOverheadSeconds: 2e-3,
};

const PCIE4_HOST: LinkProfile = { bytesPerSecond: 16e9, latencySeconds: 10e-6 };
const PCIE5_HOST: LinkProfile = { bytesPerSecond: 32e9, latencySeconds: 10e-6 };

/** The GPUs of design/hardware.md (datasheet peaks; dense fp16). */
export const DEVICE_PRESETS: Record<string, DeviceProfile> = {
  A10: {
    name: 'A10',
    memoryBytes: 24 * GiB,
    memoryBytesPerSecond: 600e9,
    matmulFlopsPerSecond: 125e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE4_HOST,
  },
  L4: {
    name: 'L4',
    memoryBytes: 24 * GiB,
    memoryBytesPerSecond: 300e9,
    matmulFlopsPerSecond: 121e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE4_HOST,
  },
  A100: {
    name: 'A100',
    memoryBytes: 40 * GiB,
    memoryBytesPerSecond: 1555e9,
    matmulFlopsPerSecond: 312e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE4_HOST,
  },
  'A100-80GB': {
    name: 'A100-80GB',
    memoryBytes: 80 * GiB,
    memoryBytesPerSecond: 2039e9,
    matmulFlopsPerSecond: 312e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE4_HOST,
  },
  H100: {
    name: 'H100',
    memoryBytes: 80 * GiB,
    memoryBytesPerSecond: 3350e9,
    matmulFlopsPerSecond: 989e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE5_HOST,
  },
  H200: {
    name: 'H200',
    memoryBytes: 141 * GiB,
    memoryBytesPerSecond: 4800e9,
    matmulFlopsPerSecond: 989e12,
    ...GPU_EFFICIENCY,
    hostLink: PCIE5_HOST,
  },
};

/** GPU-GPU over PCIe 4.0 x8 as in the Seesaw evaluation (about 16 GB/s each way). */
export const PCIE_P2P: LinkProfile = { bytesPerSecond: 16e9, latencySeconds: 30e-6 };
/** NVLink bus bandwidth an all-reduce ring reaches (A100: 600 GB/s aggregate). */
const NVLINK_BY_DEVICE: Record<string, LinkProfile> = {
  A100: { bytesPerSecond: 240e9, latencySeconds: 10e-6 },
  'A100-80GB': { bytesPerSecond: 240e9, latencySeconds: 10e-6 },
  H100: { bytesPerSecond: 360e9, latencySeconds: 8e-6 },
  H200: { bytesPerSecond: 360e9, latencySeconds: 8e-6 },
};
/** 100 Gb/s Ethernet between hosts. */
export const ETHERNET_100G: LinkProfile = { bytesPerSecond: 11e9, latencySeconds: 50e-6 };
export const DEFAULT_HOST_MEMORY_PER_DEVICE = 80 * GiB;

export class ClusterSpecError extends Error {
  override name = 'ClusterSpecError';
}

/**
 * Parses '8xA10', '8xL4', '8xA100', '8xA100-nvlink', '2x4xA10' (2 hosts of 4): devices on
 * PCIe unless the name ends in -nvlink.
 */
export function clusterPreset(spec: string): ClusterProfile {
  const match = /^(?:(\d+)x)?(\d+)x(.+?)(-nvlink)?$/i.exec(spec.trim());
  if (match === null) {
    throw new ClusterSpecError(
      `cluster '${spec}' is not of the form [HOSTSx]NxDEVICE[-nvlink] (e.g. 8xA10, 8xA100-nvlink, 2x4xA10)`,
    );
  }
  const numHosts = match[1] === undefined ? 1 : Number(match[1]);
  const devicesPerHost = Number(match[2]);
  const deviceKey = Object.keys(DEVICE_PRESETS).find((key) => key.toLowerCase() === match[3].toLowerCase());
  if (deviceKey === undefined) {
    throw new ClusterSpecError(
      `cluster '${spec}': unknown device '${match[3]}' (devices: ${Object.keys(DEVICE_PRESETS).join(', ')})`,
    );
  }
  if (!(numHosts >= 1 && devicesPerHost >= 1)) throw new ClusterSpecError(`cluster '${spec}': empty`);
  const nvlink = match[4] !== undefined;
  const intraHostLink = nvlink ? NVLINK_BY_DEVICE[deviceKey] : PCIE_P2P;
  if (intraHostLink === undefined)
    throw new ClusterSpecError(`cluster '${spec}': ${deviceKey} has no NVLink`);
  return {
    name: spec,
    device: DEVICE_PRESETS[deviceKey],
    numHosts,
    devicesPerHost,
    intraHostLink,
    interHostLink: ETHERNET_100G,
    hostMemoryBytesPerDevice: DEFAULT_HOST_MEMORY_PER_DEVICE,
  };
}

export function clusterNumDevices(cluster: ClusterProfile): number {
  return cluster.numHosts * cluster.devicesPerHost;
}

/** A copy with every intra-host device link's bandwidth scaled (the all-reduce sweep). */
export function withScaledDeviceLinks(cluster: ClusterProfile, factor: number): ClusterProfile {
  return {
    ...cluster,
    intraHostLink: {
      ...cluster.intraHostLink,
      bytesPerSecond: cluster.intraHostLink.bytesPerSecond * factor,
    },
  };
}
