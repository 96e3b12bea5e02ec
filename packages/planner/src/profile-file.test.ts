import { describe, expect, it } from 'vitest';
import { clusterPreset } from './hardware.ts';
import { ProfileFileError, parseClusterProfile } from './profile-file.ts';

describe('profile files', () => {
  it('reads back any cluster profile', () => {
    const cluster = clusterPreset('2x4xA10');
    expect(parseClusterProfile(JSON.parse(JSON.stringify(cluster)), 'x.json')).toEqual(cluster);
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
