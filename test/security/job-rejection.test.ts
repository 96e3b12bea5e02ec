/**
 * Issue 13 item 9: per-request rejection on the job protocol. A job over a real WebSocket (an
 * in-process coordinator daemon and host agent with a real device worker) gets valid requests
 * mixed with invalid ones (empty prompt, prompt too long, duplicate id, token id outside the
 * vocabulary, stop token outside it). Each invalid request comes back alone as requestRejected
 * naming it; every valid one finishes with the same tokens as a clean run on one device.
 */
import {
  CoordinatorDaemon,
  DEFAULT_SAMPLING,
  type EngineRequest,
  HostAgent,
  RemoteJobClient,
  type RequestOutput,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import { loadModelConfig } from '@seesaw/model';
import {
  type CoordinatorToJobClient,
  connectAndHello,
  connectWebSocket,
  INBOUND_TAGS,
  type JobClientToCoordinator,
  type JobReady,
} from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, runReference } from '../cluster-test-support.ts';
import { jobConfig } from '../job-config-support.ts';

const TOKEN = 'job-rejection-token-0123456789abcdef';
const vocabSize = loadModelConfig(FIXTURE).vocabSize;

function request(requestId: string, promptTokenIds: number[], overrides = {}): EngineRequest {
  return {
    requestId,
    promptTokenIds,
    sampling: { ...DEFAULT_SAMPLING, maxTokens: 6, temperature: 0, ignoreEos: true, ...overrides },
  };
}

const valid = [
  request('ok-0', [5, 17, 300, 41]),
  request('ok-1', [9, 2, 77]),
  request('ok-2', [1000, 12, 13, 14, 15], { temperature: 0.8, topK: 40, seed: 7 }),
];

describe('item 9: per-request rejection on the job protocol', () => {
  const logs: string[] = [];
  let daemon: CoordinatorDaemon;
  let agent: HostAgent;
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    daemon = await CoordinatorDaemon.start({ port: 0, token: TOKEN, log: (line) => logs.push(line) });
    agent = await HostAgent.start({
      coordinatorUrl: daemon.url,
      token: TOKEN,
      hostName: 'a',
      numDevices: 1,
      workerUrl: deviceWorkerUrl(),
      createTpGroup: createDeviceWorkerGroup,
      log: (line) => logs.push(line),
    });
    reference = await runReference(FIXTURE, valid);
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await daemon?.close();
  });

  it('a raw job client: each invalid request is rejected alone, the valid ones finish unchanged', async () => {
    const link = await connectWebSocket<JobClientToCoordinator, CoordinatorToJobClient>(daemon.url, {
      accept: INBOUND_TAGS.coordinatorToJobClient,
    });
    await connectAndHello(link, { role: 'coordinator', name: 'raw job client', token: TOKEN });
    const finished = new Map<string, number[]>();
    const rejected: Array<{ requestId: string; message: string }> = [];
    let failed: string | undefined;
    let onReady: (ready: JobReady) => void = () => {};
    const ready = new Promise<JobReady>((resolve) => {
      onReady = resolve;
    });
    link.onMessage((message) => {
      if (message.tag === 'jobReady') onReady(message);
      else if (message.tag === 'requestFinished')
        finished.set(message.output.requestId, message.output.outputTokenIds);
      else if (message.tag === 'requestRejected') rejected.push(message);
      else if (message.tag === 'jobFailed') failed = message.message;
    });
    link.post({ tag: 'openJob', config: jobConfig({ modelDir: FIXTURE, parallelism: 'D1' }) });
    const { maxModelLen } = await ready;
    const invalid = [
      request('bad-empty', []),
      request(
        'bad-long',
        Array.from({ length: maxModelLen }, (_, i) => 3 + (i % 100)),
      ),
      request('ok-1', [4, 4, 4]),
      request('bad-vocab', [5, vocabSize, 6]),
      request('bad-stop', [5, 6], { stopTokenIds: [vocabSize + 10] }),
    ];
    // Invalid ones first, between and after valid ones, all in one batch.
    link.post({
      tag: 'submitRequests',
      requests: [
        invalid[0]!,
        valid[0]!,
        valid[1]!,
        invalid[1]!,
        invalid[2]!,
        invalid[3]!,
        valid[2]!,
        invalid[4]!,
      ],
    });
    await expect
      .poll(() => finished.size + rejected.length + (failed ? 100 : 0), { timeout: 30_000 })
      .toBe(valid.length + invalid.length);
    link.close('test done');
    expect(failed).toBeUndefined();
    for (const [requestId, tokens] of reference) expect(finished.get(requestId), requestId).toEqual(tokens);
    const why = new Map(
      rejected.map((r) => [r.message.includes('duplicate') ? 'dup' : r.requestId, r.message]),
    );
    expect(why.get('bad-empty')).toMatch(/"bad-empty" rejected: empty prompt/);
    expect(why.get('bad-long')).toMatch(/"bad-long" rejected: prompt of \d+ tokens/);
    expect(why.get('dup')).toMatch(/"ok-1" rejected: duplicate requestId/);
    expect(why.get('bad-vocab')).toMatch(
      new RegExp(`"bad-vocab" rejected: prompt token id ${vocabSize} at index 1 is outside the vocabulary`),
    );
    expect(why.get('bad-stop')).toMatch(/"bad-stop" rejected: stop token id \d+ is outside the vocabulary/);
    await expect.poll(() => daemon.health().runningJobs).toEqual([]);
  }, 60_000);

  it('RemoteJobClient hands a rejection back from takeRejections while the rest finish', async () => {
    const job = await RemoteJobClient.open({
      url: daemon.url,
      token: TOKEN,
      job: { config: jobConfig({ modelDir: FIXTURE, parallelism: 'D1' }) },
    });
    try {
      // The client checks what it can (empty, too long, duplicate); the vocabulary only the coordinator knows.
      job.addRequest(valid[0]!);
      job.addRequest(request('bad-vocab', [vocabSize + 1]));
      job.addRequest(valid[1]!);
      const outputs: RequestOutput[] = [];
      const rejections: Array<{ requestId: string; message: string }> = [];
      while (job.hasUnfinishedRequests()) {
        outputs.push(...(await job.step()));
        rejections.push(...job.takeRejections());
      }
      expect(rejections.map((r) => r.requestId)).toEqual(['bad-vocab']);
      expect(rejections[0]!.message).toMatch(/outside the vocabulary/);
      expect(new Map(outputs.map((o) => [o.requestId, o.outputTokenIds]))).toEqual(
        new Map([...reference].filter(([id]) => id !== 'ok-2')),
      );
    } finally {
      await job.close();
    }
  }, 60_000);
});
