import { describe, expect, it } from 'vitest';
import { ClusterMetrics } from './cluster-metrics.ts';

/** Parses Prometheus text: every sample line is `name value`, and each has HELP and TYPE lines. */
function parse(text: string): Map<string, { value: number; type: string }> {
  const types = new Map<string, string>();
  const samples = new Map<string, { value: number; type: string }>();
  for (const line of text.trimEnd().split('\n')) {
    const typeLine = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
    if (typeLine) types.set(typeLine[1]!, typeLine[2]!);
    else if (line.startsWith('# HELP ')) continue;
    else {
      const [name, value, ...rest] = line.split(' ');
      expect(rest).toEqual([]);
      expect(types.has(name!)).toBe(true);
      samples.set(name!, { value: Number(value), type: types.get(name!)! });
    }
  }
  return samples;
}

describe('ClusterMetrics', () => {
  it('exposes gauges and counters in Prometheus text format', () => {
    const metrics = new ClusterMetrics();
    metrics.add('requestsTotal', 5);
    metrics.add('requestsFinishedTotal');
    metrics.add('requestsFinishedTotal');
    metrics.add('tokensGeneratedTotal', 17);
    const samples = parse(metrics.format({ hosts: 2, devices: 3, busyDevices: 1, runningJobs: 1 }));
    expect(samples.get('seesaw_hosts')).toEqual({ value: 2, type: 'gauge' });
    expect(samples.get('seesaw_devices')).toEqual({ value: 3, type: 'gauge' });
    expect(samples.get('seesaw_requests_total')).toEqual({ value: 5, type: 'counter' });
    expect(samples.get('seesaw_requests_finished_total')).toEqual({ value: 2, type: 'counter' });
    expect(samples.get('seesaw_tokens_generated_total')).toEqual({ value: 17, type: 'counter' });
    // Counters never touched are exposed as 0, so dashboards see them from the start.
    expect(samples.get('seesaw_device_lost_total')).toEqual({ value: 0, type: 'counter' });
    expect(samples.get('seesaw_steps_total')).toEqual({ value: 0, type: 'counter' });
  });
});
