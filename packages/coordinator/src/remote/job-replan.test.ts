import { parseParallelConfig } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { countHealthyDevices, jobLayoutName } from './job-replan.ts';
import { remoteDeviceName } from './remote-replicas.ts';

describe('countHealthyDevices', () => {
  const hosts = ['a', 'a', 'b', 'b'];
  const t2p2 = parseParallelConfig('T2P2');
  const up = (lost: string[]) => (host: string) => !lost.includes(host);

  it("counts the job's devices on hosts still up, less the devices named lost", () => {
    expect(countHealthyDevices(hosts, [remoteDeviceName(2, t2p2, 'b')], up(['b']))).toBe(2);
    // A device worker lost on a host that is up: its replica's other devices stay healthy.
    expect(countHealthyDevices(hosts, [remoteDeviceName(1, t2p2, 'a')], up([]))).toBe(3);
    expect(countHealthyDevices(hosts, [remoteDeviceName(0, t2p2, 'a')], up(['a', 'b']))).toBe(0);
  });

  it('names a pair by both layouts and a static layout by itself', () => {
    const seesaw = { decode: parseParallelConfig('T2') };
    expect(jobLayoutName({ parallel: parseParallelConfig('P2'), seesaw })).toBe('prefill P2, decode T2');
    expect(jobLayoutName({ parallel: parseParallelConfig('D2'), seesaw: undefined })).toBe('D2');
  });
});
