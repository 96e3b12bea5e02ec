import { readFileSync } from 'node:fs';
import type { CpuKernelProfile } from './cpu-kernel-costs.ts';
import type { ClusterProfile, DeviceProfile, LinkProfile } from './hardware.ts';

/** What `seesaw profile` writes: a one-host cluster profile of this machine's device workers. */
export interface MeasuredProfile extends ClusterProfile {
  kind: 'seesaw-profile';
  measuredAt: string;
  /** Raw figures behind the profile (GFLOP/s, GB/s...), for the record. */
  measurements: Record<string, number>;
}

export class ProfileFileError extends Error {
  override name = 'ProfileFileError';
}

function positive(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ProfileFileError(`${where} must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegative(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ProfileFileError(`${where} must be a number >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

function link(value: unknown, where: string): LinkProfile {
  const v = (value ?? {}) as Record<string, unknown>;
  return {
    bytesPerSecond: positive(v.bytesPerSecond, `${where}.bytesPerSecond`),
    latencySeconds: nonNegative(v.latencySeconds, `${where}.latencySeconds`),
  };
}

function cpuKernels(value: unknown, where: string, isNested = false): CpuKernelProfile {
  const v = (value ?? {}) as Record<string, unknown>;
  const list = (field: string): number[] => {
    const items = v[field];
    if (!Array.isArray(items) || items.length === 0)
      throw new ProfileFileError(`${where}.${field} must be a non-empty array of numbers`);
    return items.map((item, i) => positive(item, `${where}.${field}[${i}]`));
  };
  const matmulRows = list('matmulRows');
  const matmulSecondsPerRowParam = list('matmulSecondsPerRowParam');
  if (matmulRows.length !== matmulSecondsPerRowParam.length)
    throw new ProfileFileError(`${where}: matmulRows and matmulSecondsPerRowParam differ in length`);
  if (matmulRows.some((rows, i) => i > 0 && rows <= matmulRows[i - 1]))
    throw new ProfileFileError(`${where}.matmulRows must be ascending`);
  return {
    matmulRows,
    matmulSecondsPerRowParam,
    elementwiseSecondsPerElement: positive(
      v.elementwiseSecondsPerElement,
      `${where}.elementwiseSecondsPerElement`,
    ),
    decodeAttentionFlopsPerSecond: positive(
      v.decodeAttentionFlopsPerSecond,
      `${where}.decodeAttentionFlopsPerSecond`,
    ),
    prefillAttentionFlopsPerSecond: positive(
      v.prefillAttentionFlopsPerSecond,
      `${where}.prefillAttentionFlopsPerSecond`,
    ),
    ...(v.sampleSecondsPerLogit === undefined
      ? {}
      : { sampleSecondsPerLogit: nonNegative(v.sampleSecondsPerLogit, `${where}.sampleSecondsPerLogit`) }),
    ...(v.alone === undefined || isNested ? {} : { alone: cpuKernels(v.alone, `${where}.alone`, true) }),
  };
}

/** Checks a parsed profile (any ClusterProfile-shaped JSON); every error names the field. */
export function parseClusterProfile(json: unknown, source: string): ClusterProfile {
  if (typeof json !== 'object' || json === null) throw new ProfileFileError(`${source}: not a JSON object`);
  const p = json as Record<string, unknown>;
  const d = (p.device ?? {}) as Record<string, unknown>;
  const at = (field: string) => `${source}: device.${field}`;
  const device: DeviceProfile = {
    name: typeof d.name === 'string' ? d.name : 'device',
    memoryBytes: positive(d.memoryBytes, at('memoryBytes')),
    memoryBytesPerSecond: positive(d.memoryBytesPerSecond, at('memoryBytesPerSecond')),
    matmulFlopsPerSecond: positive(d.matmulFlopsPerSecond, at('matmulFlopsPerSecond')),
    matmulEfficiency: positive(d.matmulEfficiency, at('matmulEfficiency')),
    memoryEfficiency: positive(d.memoryEfficiency, at('memoryEfficiency')),
    attentionEfficiency: positive(d.attentionEfficiency, at('attentionEfficiency')),
    memoryUtilization: positive(d.memoryUtilization, at('memoryUtilization')),
    activationReserveBytes: nonNegative(d.activationReserveBytes, at('activationReserveBytes')),
    stepOverheadSeconds: nonNegative(d.stepOverheadSeconds, at('stepOverheadSeconds')),
    ...(d.computeBytesPerElement === undefined
      ? {}
      : { computeBytesPerElement: positive(d.computeBytesPerElement, at('computeBytesPerElement')) }),
    ...(d.sampleSecondsPerLogit === undefined
      ? {}
      : { sampleSecondsPerLogit: nonNegative(d.sampleSecondsPerLogit, at('sampleSecondsPerLogit')) }),
    ...(d.cpuKernels === undefined ? {} : { cpuKernels: cpuKernels(d.cpuKernels, at('cpuKernels')) }),
    hostLink: link(d.hostLink, at('hostLink')),
    ...(d.kvTransferLink === undefined
      ? {}
      : { kvTransferLink: link(d.kvTransferLink, at('kvTransferLink')) }),
    ...(d.reshardHostLink === undefined
      ? {}
      : { reshardHostLink: link(d.reshardHostLink, at('reshardHostLink')) }),
    ...(d.reshardWeightAssembly === undefined
      ? {}
      : { reshardWeightAssembly: link(d.reshardWeightAssembly, at('reshardWeightAssembly')) }),
    ...(d.kvFirstTouchBytesPerSecond === undefined
      ? {}
      : {
          kvFirstTouchBytesPerSecond: positive(
            d.kvFirstTouchBytesPerSecond,
            at('kvFirstTouchBytesPerSecond'),
          ),
        }),
  };
  const count = (field: string): number => {
    const value = positive(p[field], `${source}: ${field}`);
    if (!Number.isInteger(value)) throw new ProfileFileError(`${source}: ${field} must be an integer`);
    return value;
  };
  return {
    name: typeof p.name === 'string' ? p.name : source,
    device,
    numHosts: count('numHosts'),
    devicesPerHost: count('devicesPerHost'),
    intraHostLink: link(p.intraHostLink, `${source}: intraHostLink`),
    interHostLink: link(p.interHostLink, `${source}: interHostLink`),
    ...(p.reshardPeerLink === undefined
      ? {}
      : { reshardPeerLink: link(p.reshardPeerLink, `${source}: reshardPeerLink`) }),
    hostMemoryBytesPerDevice: positive(p.hostMemoryBytesPerDevice, `${source}: hostMemoryBytesPerDevice`),
  };
}

export function loadClusterProfile(path: string): ClusterProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ProfileFileError(`cannot read profile ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProfileFileError(`${path}: invalid JSON (${(error as Error).message})`);
  }
  return parseClusterProfile(json, path);
}
