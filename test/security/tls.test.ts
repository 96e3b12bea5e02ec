/**
 * Issue 13 item 6 (TLS): a coordinator daemon, two host agents and a job client over wss:// on
 * loopback, with a CA and a server certificate made in the test by the openssl CLI. The job is
 * P2 over both hosts, so its stages also talk over the agents' TLS-only peer-link listeners;
 * its tokens must equal a clean run on one device. A client with another CA, or with none (the
 * system's CAs), is refused, and plain ws:// to the TLS listener fails with an error saying so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorDaemon, HostAgent, RemoteJobClient, type RequestOutput } from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import { loadModelConfig } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, makeRequests, runReference } from '../cluster-test-support.ts';
import { jobConfig } from '../job-config-support.ts';
import { TestCertificates } from './tls-test-support.ts';

const TOKEN = 'tls-test-token-0123456789abcdef0123';
const dir = mkdtempSync(join(tmpdir(), 'seesaw-tls-'));

const certs = new TestCertificates(dir);
const read = (file: string) => certs.read(file);

describe("item 6 (TLS): wss:// for the coordinator, agents' peer links and job clients", () => {
  const logs: string[] = [];
  let daemon: CoordinatorDaemon;
  const agents: HostAgent[] = [];
  const requests = makeRequests(loadModelConfig(FIXTURE).vocabSize, 11).slice(0, 6);
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    certs.makeCa('right');
    certs.makeCa('wrong');
    certs.makeServerCert('right');
    const tls = { ca: read('ca-right.pem'), cert: read('server.pem'), key: read('server-key.pem') };
    daemon = await CoordinatorDaemon.start({
      port: 0,
      token: TOKEN,
      tls: { cert: tls.cert, key: tls.key },
      log: (line) => logs.push(line),
    });
    for (const hostName of ['a', 'b']) {
      agents.push(
        await HostAgent.start({
          coordinatorUrl: daemon.url,
          token: TOKEN,
          tls,
          hostName,
          numDevices: 1,
          workerUrl: deviceWorkerUrl(),
          createTpGroup: createDeviceWorkerGroup,
          log: (line) => logs.push(line),
        }),
      );
    }
    reference = await runReference(FIXTURE, requests);
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await daemon?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a job over wss:// (peer links too) with the same tokens as one device', async () => {
    expect(daemon.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    expect(logs.join('\n')).toMatch(/peer links at wss:\/\/127\.0\.0\.1:\d+/);
    const job = await RemoteJobClient.open({
      url: daemon.url,
      token: TOKEN,
      tlsCa: read('ca-right.pem'),
      job: { config: jobConfig({ modelDir: FIXTURE, parallelism: 'P2' }) },
    });
    try {
      expect(job.ready.layout).toBe('P2 on a (1 device), b (1 device)');
      for (const request of requests) job.addRequest(request);
      const outputs: RequestOutput[] = [];
      while (job.hasUnfinishedRequests()) outputs.push(...(await job.step()));
      expect(new Map(outputs.map((o) => [o.requestId, o.outputTokenIds]))).toEqual(reference);
    } finally {
      await job.close();
    }
  }, 60_000);

  it('serves /healthz over HTTPS on the same port', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      get(`${daemon.url.replace(/^wss:/, 'https:')}/healthz`, { ca: read('ca-right.pem') }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect((JSON.parse(body) as { hosts: Array<{ name: string }> }).hosts.map((h) => h.name).sort()).toEqual([
      'a',
      'b',
    ]);
  });

  it('refuses a server certificate from another CA, or none given (system CAs)', async () => {
    const open = (tlsCa: Buffer | undefined) =>
      RemoteJobClient.open({
        url: daemon.url,
        token: TOKEN,
        ...(tlsCa ? { tlsCa } : {}),
        log: (line) => logs.push(line),
        job: { config: jobConfig({ modelDir: FIXTURE, parallelism: 'D1' }) },
      });
    await expect(open(read('ca-wrong.pem'))).rejects.toThrow(/not signed by the CA given with --tls-ca/);
    await expect(open(undefined)).rejects.toThrow(/not signed by the CA given with --tls-ca/);
  });

  it('refuses plain ws:// to the TLS listener with an error that says so', async () => {
    const plainUrl = daemon.url.replace(/^wss:/, 'ws:');
    await expect(
      RemoteJobClient.open({
        url: plainUrl,
        token: TOKEN,
        log: (line) => logs.push(line),
        job: { config: jobConfig({ modelDir: FIXTURE, parallelism: 'D1' }) },
      }),
    ).rejects.toThrow(/the server may require TLS: connect with wss:\/\//);
  });
});
