/**
 * Replicas that span hosts: two host agents with one device each (in this process, device
 * workers as threads, every agent-to-agent link a real loopback WebSocket) run T2 (the TP
 * all-reduce as an EndpointGroup over the relayed links) and P2 (activations relayed to the next
 * stage's host) and give the reference engine's answers. A job that would span hosts is refused
 * when a host accepts no peer links.
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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, makeRequests, runReference } from './cluster-test-support.ts';
import { jobConfig } from './job-config-support.ts';

const TOKEN = 'cross-host-token';

async function runJob(url: string, parallelism: string, requests: EngineRequest[]) {
  const job = await RemoteJobClient.open({
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
  try {
    for (const request of requests) job.addRequest(request);
    const finished: RequestOutput[] = [];
    while (job.hasUnfinishedRequests()) finished.push(...(await job.step()));
    return {
      layout: job.ready.layout,
      outputs: new Map(finished.map((o) => [o.requestId, o.outputTokenIds])),
    };
  } finally {
    await job.close();
  }
}

function startAgent(daemon: CoordinatorDaemon, hostName: string, logs: string[], peers = true) {
  return HostAgent.start({
    coordinatorUrl: daemon.url,
    token: TOKEN,
    hostName,
    numDevices: 1,
    workerUrl: deviceWorkerUrl(),
    createTpGroup: createDeviceWorkerGroup,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 3000,
    log: (line) => logs.push(line),
    ...(peers ? {} : { peerListen: false as const }),
  });
}

describe('a replica spanning two hosts', () => {
  const logs: string[] = [];
  let daemon: CoordinatorDaemon;
  let agents: HostAgent[] = [];
  let requests: EngineRequest[] = [];
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    daemon = await CoordinatorDaemon.start({
      port: 0,
      token: TOKEN,
      log: (line) => logs.push(line),
      hostHeartbeatIntervalMs: 200,
      hostHeartbeatTimeoutMs: 3000,
    });
    agents = [await startAgent(daemon, 'host-a', logs), await startAgent(daemon, 'host-b', logs)];
    requests = makeRequests(loadModelConfig(FIXTURE).vocabSize);
    reference = await runReference(FIXTURE, requests);
  });

  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await daemon?.close();
  });

  it.each(['T2', 'P2'])(
    '%s over host-a and host-b answers like the reference engine',
    async (parallelism) => {
      const { layout, outputs } = await runJob(daemon.url, parallelism, requests);
      expect(layout).toBe(`${parallelism} on host-a (1 device), host-b (1 device)`);
      expect(outputs).toEqual(reference);
      await expect.poll(() => daemon.health().runningJobs).toEqual([]);
      await expect.poll(() => agents.map((agent) => agent.numRunningDevices)).toEqual([0, 0]);
    },
    60_000,
  );

  it('keeps a replica on one host when a host takes no peer links', async () => {
    const solo = await startAgent(daemon, 'host-c', logs, false);
    try {
      await expect(runJob(daemon.url, 'T2', requests)).rejects.toThrow(
        /cannot place 1 replicas of 2 devices/,
      );
    } finally {
      await solo.close();
    }
    expect(logs.some((line) => /peer links at ws:\/\/127\.0\.0\.1:\d+/.test(line))).toBe(true);
  });

  // Last: it stops host-b's agent.
  it('a host lost under a spanning replica ends the job with an error naming it; the other host is freed', async () => {
    const job = await RemoteJobClient.open({
      url: daemon.url,
      token: TOKEN,
      job: {
        config: jobConfig({
          modelDir: FIXTURE,
          parallelism: 'T2',
          deviceMemoryBytes: 48 << 20,
          maxNumBatchedTokens: 16,
          maxNumSeqs: 2,
        }),
      },
    });
    try {
      for (const request of requests)
        job.addRequest({ ...request, sampling: { ...request.sampling, maxTokens: 64, ignoreEos: true } });
      await job.step();
      await agents[1]!.close('host-b pulled');
      const failure = await (async () => {
        try {
          while (job.hasUnfinishedRequests()) await job.step();
        } catch (error) {
          return error as RemoteJobError;
        }
        return undefined;
      })();
      expect(failure).toBeInstanceOf(RemoteJobError);
      expect(failure!.message).toMatch(/host-b/);
    } finally {
      await job.close();
    }
    await expect.poll(() => daemon.health().runningJobs, { timeout: 10_000 }).toEqual([]);
    await expect.poll(() => agents[0]!.numRunningDevices, { timeout: 10_000 }).toBe(0);
  }, 60_000);
});
