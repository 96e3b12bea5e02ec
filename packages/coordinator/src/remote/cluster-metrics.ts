/**
 * The coordinator daemon's counters and gauges, and their Prometheus text exposition
 * (format 0.0.4: '# HELP', '# TYPE', then 'name value' lines).
 */

export interface ClusterGauges {
  hosts: number;
  devices: number;
  busyDevices: number;
  runningJobs: number;
}

const COUNTERS = {
  jobsTotal: ['seesaw_jobs_total', 'Jobs opened by clients.'],
  jobsFailedTotal: ['seesaw_jobs_failed_total', 'Jobs that ended with an error.'],
  requestsTotal: ['seesaw_requests_total', 'Requests submitted by job clients.'],
  requestsFinishedTotal: ['seesaw_requests_finished_total', 'Requests completed and sent back.'],
  requestsRejectedTotal: [
    'seesaw_requests_rejected_total',
    'Submitted requests rejected alone (e.g. empty, too long, duplicate id, token outside the vocabulary).',
  ],
  tokensGeneratedTotal: ['seesaw_tokens_generated_total', 'Output tokens of completed requests.'],
  promptTokensTotal: ['seesaw_prompt_tokens_total', 'Prompt tokens of completed requests.'],
  stepsTotal: ['seesaw_steps_total', 'Engine steps run on the devices.'],
  deviceLostTotal: ['seesaw_device_lost_total', 'Device actors lost during a job.'],
  hostsLostTotal: ['seesaw_hosts_lost_total', 'Hosts dropped (link closed or heartbeats missed).'],
  refusedConnectionsTotal: [
    'seesaw_refused_connections_total',
    'Connections that did not complete hello: refused, malformed, over a cap, or closed.',
  ],
} as const;

export type CounterName = keyof typeof COUNTERS;

const GAUGES: Record<keyof ClusterGauges, readonly [string, string]> = {
  hosts: ['seesaw_hosts', 'Worker hosts joined now.'],
  devices: ['seesaw_devices', 'Devices offered by the joined hosts.'],
  busyDevices: ['seesaw_devices_busy', 'Devices running a job now.'],
  runningJobs: ['seesaw_jobs_running', 'Jobs running now.'],
};

export class ClusterMetrics {
  private readonly values = new Map<CounterName, number>();

  add(name: CounterName, amount = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + amount);
  }

  get(name: CounterName): number {
    return this.values.get(name) ?? 0;
  }

  /** Prometheus text format: gauges from `gauges`, then every counter (zeros included). */
  format(gauges: ClusterGauges): string {
    const lines: string[] = [];
    for (const key of Object.keys(GAUGES) as Array<keyof ClusterGauges>) {
      const [name, help] = GAUGES[key];
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${gauges[key]}`);
    }
    for (const key of Object.keys(COUNTERS) as CounterName[]) {
      const [name, help] = COUNTERS[key];
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${this.get(key)}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
