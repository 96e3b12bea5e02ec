import { describe, expect, it } from 'vitest';
import { clusterPreset } from './hardware.ts';
import { ProfileFileError, parseClusterProfile } from './profile-file.ts';

describe('profile files', () => {
  it('reads back any cluster profile', () => {
    const cluster = clusterPreset('2x4xA10');
    expect(parseClusterProfile(JSON.parse(JSON.stringify(cluster)), 'x.json')).toEqual(cluster);
  });

  it('reads back measured CPU kernel rates and the re-shard and KV transfer links', () => {
    const base = clusterPreset('2xA10');
    const cluster = {
      ...base,
      reshardPeerLink: { bytesPerSecond: 1.4e9, latencySeconds: 3e-4 },
      device: {
        ...base.device,
        cpuKernels: {
          matmulRows: [1, 8, 64],
          matmulSecondsPerRowParam: [4e-10, 6e-11, 2.5e-11],
          elementwiseSecondsPerElement: 4e-10,
          decodeAttentionFlopsPerSecond: 1.8e10,
          prefillAttentionFlopsPerSecond: 2.2e10,
        },
        kvTransferLink: { bytesPerSecond: 1.4e9, latencySeconds: 3e-4 },
        reshardHostLink: { bytesPerSecond: 5e9, latencySeconds: 2e-6 },
      },
    };
    expect(parseClusterProfile(JSON.parse(JSON.stringify(cluster)), 'c.json')).toEqual(cluster);
    const bad = JSON.parse(JSON.stringify(cluster));
    bad.device.cpuKernels.matmulRows = [1, 64, 8];
    expect(() => parseClusterProfile(bad, 'c.json')).toThrow(/cpuKernels\.matmulRows must be ascending/);
    bad.device.cpuKernels.matmulRows = [1, 8];
    expect(() => parseClusterProfile(bad, 'c.json')).toThrow(/differ in length/);
  });

  it('names the bad field', () => {
    const cluster = JSON.parse(JSON.stringify(clusterPreset('8xL4')));
    cluster.device.memoryBytesPerSecond = -1;
    expect(() => parseClusterProfile(cluster, 'p.json')).toThrow(ProfileFileError);
    expect(() => parseClusterProfile(cluster, 'p.json')).toThrow(
      /p\.json: device\.memoryBytesPerSecond must be a positive number/,
    );
    expect(() => parseClusterProfile({ ...clusterPreset('8xL4'), devicesPerHost: 2.5 }, 'q')).toThrow(
      /devicesPerHost must be an integer/,
    );
  });
});
