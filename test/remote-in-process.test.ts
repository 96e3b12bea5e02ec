/**
 * The many-machines pieces in one process (device workers are still threads): a coordinator
 * daemon, host agents and job clients through their APIs. TP and PP inside one remote host give
 * the reference engine's answers; a joined host that goes silent is dropped by heartbeats; a job
 * that cannot be laid out, and a link whose first message is not a known kind, are refused.
 */
import {
  CoordinatorDaemon,
  type EngineRequest,
  HostAgent,
  RemoteJobClient,
  RemoteJobError,
  type RequestOutput,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import { loadModelConfig } from '@seesaw/model';
import { connectAndHello, connectWebSocket, type Message } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, makeRequests, runReference } from './cluster-test-support.ts';
import { jobConfig } from './job-config-support.ts';

const TOKEN = 'in-process-remote-token';
const quiet = (lines: string[]) => (line: string) => {
  lines.push(line);
};

/** Opens a job of the fixture model in `parallelism` (resolves once it is placed and ready). */
function openJob(url: string, parallelism: string): Promise<RemoteJobClient> {
  return RemoteJobClient.open({
    url,
    token: TOKEN,
    job: {
      config: jobConfig({
        modelDir: FIXTURE,
        parallelism,
        deviceMemoryBytes: 48 << 20,
        maxNumBatchedTokens: 64,
        maxNumSeqs: 8,
      }),
    },
  });
}

async function runJob(
  url: string,
  parallelism: string,
  requests: EngineRequest[],
): Promise<Map<string, number[]>> {
  const job = await openJob(url, parallelism);
  try {
    for (const request of requests) job.addRequest(request);
    const finished: RequestOutput[] = [];
    while (job.hasUnfinishedRequests()) finished.push(...(await job.step()));
    expect(job.stats.numFinishedRequests).toBe(requests.length);
    return new Map(finished.map((o) => [o.requestId, o.outputTokenIds]));
  } finally {
    await job.close();
  }
}

describe('coordinator daemon with in-process host agents', () => {
  const logs: string[] = [];
  let daemon: CoordinatorDaemon;
  let agent: HostAgent;
  let requests: EngineRequest[] = [];
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    daemon = await CoordinatorDaemon.start({
      port: 0,
      token: TOKEN,
      log: quiet(logs),
      hostHeartbeatIntervalMs: 100,
      hostHeartbeatTimeoutMs: 1000,
    });
    agent = await HostAgent.start({
      coordinatorUrl: daemon.url,
      token: TOKEN,
      hostName: 'solo',
      numDevices: 2,
      workerUrl: deviceWorkerUrl(),
      createTpGroup: createDeviceWorkerGroup,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1000,
      log: quiet(logs),
    });
    requests = makeRequests(loadModelConfig(FIXTURE).vocabSize);
    reference = await runReference(FIXTURE, requests);
  });

  afterAll(async () => {
    await agent?.close();
    await daemon?.close();
  });

  it.each(['T2', 'P2', 'D2'])(
    '%s on one remote host answers like the reference engine',
    async (parallelism) => {
      expect(await runJob(daemon.url, parallelism, requests)).toEqual(reference);
      await expect.poll(() => daemon.health().runningJobs).toEqual([]);
    },
  );

  it('refuses a layout the hosts cannot hold, and a model that cannot be split that way', async () => {
    await expect(runJob(daemon.url, 'D3', requests)).rejects.toThrow(/cannot place 3 replicas/);
    await expect(runJob(daemon.url, 'T3', requests)).rejects.toBeInstanceOf(RemoteJobError);
    expect(daemon.health().hosts).toEqual([{ name: 'solo', devices: 2, busyDevices: 0 }]);
  });

  it('places a job that arrives before the job holding its devices has left, once that one leaves', async () => {
    // A client switching jobs closes one connection and opens another; the coordinator may take
    // in the new job's open first. Here the old job is still open when the new one arrives.
    const holder = await openJob(daemon.url, 'T2');
    expect(daemon.health().hosts).toEqual([{ name: 'solo', devices: 2, busyDevices: 2 }]);
    const next = runJob(daemon.url, 'P2', requests);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await holder.close();
    expect(await next).toEqual(reference);
    await expect.poll(() => daemon.health().hosts).toEqual([{ name: 'solo', devices: 2, busyDevices: 0 }]);
  });

  it('runs the EngineConfig the client sent as it is: one that does not hold together is refused, naming it', async () => {
    const open = (config: ReturnType<typeof jobConfig>) =>
      RemoteJobClient.open({ url: daemon.url, token: TOKEN, job: { config } });
    const base = jobConfig({ modelDir: FIXTURE, parallelism: 'D2' });
    await expect(open({ ...base, parallel: { ...base.parallel, numDevices: 3 } })).rejects.toThrow(
      /numDevices 3 does not match its layout D2/,
    );
    const seesaw = { ...base, parallel: { ...base.parallel, decodeLayout: 'T2' } };
    await expect(open(seesaw)).rejects.toThrow(/Seesaw job \(decodeLayout\) needs the host KV tier/);
    await expect(open({ ...seesaw, cache: { ...seesaw.cache, hostKvBytes: 1 << 20 } })).rejects.toThrow(
      /decode configuration T2 must keep the prefill configuration D2's dp/,
    );
    expect(daemon.health().hosts).toEqual([{ name: 'solo', devices: 2, busyDevices: 0 }]);
  });

  it('drops a joined host that stops sending heartbeats', async () => {
    const link = await connectWebSocket<Message, Message>(daemon.url);
    await connectAndHello(link, { role: 'device', name: 'agent mute', token: TOKEN });
    link.post({ tag: 'agentJoin', hostName: 'mute', numDevices: 4 });
    await expect.poll(() => daemon.health().hosts.map((h) => h.name)).toEqual(['mute', 'solo']);
    const joinedAt = Date.now();
    await expect.poll(() => daemon.health().hosts.map((h) => h.name), { timeout: 5000 }).toEqual(['solo']);
    expect(Date.now() - joinedAt).toBeLessThan(3000);
    expect(
      logs.some((line) => /host "mute" dropped: no heartbeat for \d+ ms \(deadline 1000 ms\)/.test(line)),
    ).toBe(true);
    expect(daemon.metricsText()).toMatch(/^seesaw_hosts_lost_total 1$/m);
  });

  it('refuses a second host of the same name and a link whose first message is not a known kind', async () => {
    const twin = await connectWebSocket<Message, Message>(daemon.url);
    await connectAndHello(twin, { role: 'device', name: 'agent solo again', token: TOKEN });
    const twinClosed = new Promise<string>((resolve) => twin.onClose(resolve));
    twin.post({ tag: 'agentJoin', hostName: 'solo', numDevices: 1 });
    expect(await twinClosed).toMatch(/ws closed/);
    expect(logs.some((line) => line.includes('host name solo is already joined'))).toBe(true);

    const odd = await connectWebSocket<Message, Message>(daemon.url);
    await connectAndHello(odd, { role: 'device', name: 'odd', token: TOKEN });
    const answers: Message[] = [];
    odd.onMessage((message) => answers.push(message));
    const oddClosed = new Promise<string>((resolve) => odd.onClose(resolve));
    odd.post({ tag: 'heartbeat', seq: 0, sentAtMs: Date.now() });
    await oddClosed;
    expect(answers).toEqual([expect.objectContaining({ tag: 'protocolError', code: 'unexpected' })]);
    expect(daemon.health().hosts.map((h) => h.name)).toEqual(['solo']);
  });
});
