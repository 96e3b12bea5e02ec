/**
 * The host-agent and job-client messages: valid ones round-trip; malformed fields, seeds and
 * counters are rejected with the path named; each link accepts only its own direction's tags.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../codec.ts';
import type { Message } from './index.ts';
import { INBOUND_TAGS } from './index.ts';

function decode(message: Record<string, unknown>, accept?: ReadonlySet<string>) {
  return decodeFrame(encodeFrame(message as unknown as Message, []), { accept });
}

function rejection(message: Record<string, unknown>, accept?: ReadonlySet<string>): string {
  const result = decode(message, accept);
  if (result.ok) throw new Error(`expected ${String(message.tag)} to be rejected`);
  return `${result.error.code}: ${result.error.message}`;
}

/** A job's whole engine configuration, as the CLI's buildEngineConfig writes it. */
const engineConfig = {
  model: { dir: '/m' },
  parallel: { layout: 'D2', numDevices: 2 },
  cache: { blockSize: 16, kvCacheBytes: 1 << 29 },
  scheduler: {
    maxNumBatchedTokens: 512,
    maxNumSeqs: 256,
    prefillTokenBudget: 4096,
    watermark: 0.1,
    hostLowMark: 0.2,
  },
};

const sampling = {
  maxTokens: 4,
  temperature: 0.7,
  topP: 0.9,
  topK: 5,
  seed: 12345,
  stopTokenIds: [],
  ignoreEos: true,
};
const output = {
  requestId: 'a',
  promptTokenIds: [1, 2],
  outputTokenIds: [3],
  finishReason: 'length',
  numPreemptions: 0,
  arrivalMs: 0,
  firstTokenMs: 1,
  finishMs: 2,
};

describe('host-agent and job-client messages', () => {
  it('round-trips valid messages unchanged', () => {
    const messages = [
      { tag: 'agentJoin', hostName: 'node-7.rack_2', numDevices: 8 },
      { tag: 'agentJoin', hostName: 'a', numDevices: 1, peerUrl: 'ws://10.0.0.2:4100' },
      { tag: 'deviceChannel', jobId: 3, device: 0, peerDevice: 1 },
      { tag: 'deviceChannel', jobId: 3, device: 0, peerDevice: 1, linkIndex: 2 },
      {
        tag: 'spawnReplica',
        jobId: 1,
        dpRank: 0,
        firstDevice: 0,
        tp: 2,
        pp: 1,
        deviceToken: 't',
        devices: [1],
        hostUrls: ['ws://127.0.0.1:4001', 'ws://127.0.0.1:4002'],
      },
      {
        tag: 'spawnReplica',
        jobId: 2,
        dpRank: 1,
        firstDevice: 1,
        tp: 1,
        pp: 1,
        deviceToken: 't',
        hostKv: { modelDir: '/m', blockSize: 16, capacityBytes: 1 << 24, numEngines: 2 },
      },
      {
        tag: 'spawnReplica',
        jobId: 3,
        dpRank: 0,
        firstDevice: 0,
        tp: 1,
        pp: 2,
        deviceToken: 't',
        devices: [1],
        hostUrls: ['ws://127.0.0.1:4001', 'ws://127.0.0.1:4002'],
        decodeLayout: { tp: 2, pp: 1 },
      },
      { tag: 'submitRequests', requests: [{ requestId: 'x', promptTokenIds: [4], sampling }] },
      {
        tag: 'submitRequests',
        requests: [{ requestId: 'y', promptTokenIds: [4], sampling: { ...sampling, seed: null } }],
      },
      { tag: 'requestFinished', output, stats: { numSteps: 2, busyMs: 1.25 } },
      {
        tag: 'submitRequests',
        requests: [{ requestId: 'z', promptTokenIds: [4], sampling, reportProgress: true }],
      },
      { tag: 'requestProgress', requestId: 'z', offset: 3, tokenIds: [7, 8] },
      { tag: 'stopRequests', requestIds: ['z'] },
      {
        tag: 'openJob',
        config: {
          ...engineConfig,
          parallel: { layout: 'D2T2', numDevices: 4, numThreadsPerDevice: 2 },
          cache: { ...engineConfig.cache, deviceMemoryBytes: 1 << 26 },
        },
      },
      {
        tag: 'openJob',
        config: {
          ...engineConfig,
          cache: { ...engineConfig.cache, hostKvBytes: 1 << 30, preemptionMode: 'swap' },
        },
      },
      {
        tag: 'openJob',
        config: {
          ...engineConfig,
          parallel: { layout: 'P2', decodeLayout: 'T2', numDevices: 2, reshardRoute: 'p2p' },
        },
      },
    ];
    for (const message of messages) {
      const result = decode(message);
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.message).toEqual(message);
    }
  });

  it('rejects bad fields, naming them', () => {
    expect(rejection({ tag: 'agentJoin', hostName: 'bad host/name', numDevices: 1 })).toMatch(/hostName/);
    expect(rejection({ tag: 'agentJoin', hostName: 'a', numDevices: -1 })).toMatch(/numDevices/);
    expect(rejection({ tag: 'agentJoin', hostName: 'a', numDevices: 1, peerUrl: 'http://x' })).toMatch(
      /peerUrl/,
    );
    const spawn = {
      tag: 'spawnReplica',
      jobId: 1,
      dpRank: 0,
      firstDevice: 0,
      tp: 2,
      pp: 1,
      deviceToken: 't',
    };
    expect(rejection({ ...spawn, devices: [] })).toMatch(/devices/);
    expect(rejection({ ...spawn, devices: [0], hostUrls: ['a b'] })).toMatch(/hostUrls\[0\]/);
    expect(
      rejection({ tag: 'spawnReplica', jobId: 1, dpRank: 0, firstDevice: 0, tp: 0, pp: 1, deviceToken: 't' }),
    ).toMatch(/\.tp/);
    const hostKv = { modelDir: '/m', blockSize: 16, capacityBytes: 1 << 24, numEngines: 2 };
    expect(rejection({ ...spawn, hostKv: { ...hostKv, numEngines: 0 } })).toMatch(/hostKv\.numEngines/);
    expect(rejection({ ...spawn, decodeLayout: { tp: 0, pp: 1 } })).toMatch(/decodeLayout\.tp/);
    expect(rejection({ ...spawn, hostKv: { ...hostKv, modelDir: undefined } })).toMatch(/hostKv\.modelDir/);
    const withCache = (cache: object) => ({
      tag: 'openJob',
      config: { ...engineConfig, cache: { ...engineConfig.cache, ...cache } },
    });
    expect(rejection(withCache({ preemptionMode: 'maybe' }))).toMatch(/config\.cache\.preemptionMode/);
    expect(rejection(withCache({ hostKvBytes: 0 }))).toMatch(/config\.cache\.hostKvBytes/);
    expect(
      rejection({ tag: 'openJob', config: { ...engineConfig, parallel: { layout: 'X2', numDevices: 2 } } }),
    ).toMatch(/config\.parallel\.layout/);
    expect(
      rejection({
        tag: 'openJob',
        config: { ...engineConfig, scheduler: { ...engineConfig.scheduler, watermark: 2 } },
      }),
    ).toMatch(/config\.scheduler\.watermark/);
    const { scheduler: _dropped, ...withoutScheduler } = engineConfig;
    expect(rejection({ tag: 'openJob', config: withoutScheduler })).toMatch(/scheduler/);
    const badSeed = { requestId: 'x', promptTokenIds: [4], sampling: { ...sampling, seed: 1.5 } };
    expect(rejection({ tag: 'submitRequests', requests: [badSeed] })).toMatch(
      /requests\[0\]\.sampling\.seed/,
    );
    const negativeToken = { requestId: 'x', promptTokenIds: [4, -1], sampling };
    expect(rejection({ tag: 'submitRequests', requests: [negativeToken] })).toMatch(/promptTokenIds\[1\]/);
    expect(
      rejection({ tag: 'requestFinished', output: { ...output, finishReason: 'abort' }, stats: {} }),
    ).toMatch(/finishReason/);
    expect(rejection({ tag: 'requestFinished', output, stats: { numSteps: 'many' } })).toMatch(
      /stats\.numSteps/,
    );
    expect(rejection({ tag: 'openJob', config: engineConfig, extra: 1 })).toMatch(/unexpected field/);
    expect(rejection({ tag: 'openJob', config: { ...engineConfig, extra: 1 } })).toMatch(/unexpected field/);
    expect(rejection({ tag: 'openJob', modelDir: '/m', parallelism: 'D2' })).toMatch(/config/);
  });

  it('each link accepts only its direction', () => {
    const join = { tag: 'agentJoin', hostName: 'a', numDevices: 1 };
    expect(decode(join, INBOUND_TAGS.hostAgentToCoordinator).ok).toBe(true);
    expect(rejection(join, INBOUND_TAGS.coordinatorToJobClient)).toMatch(/^unexpected/);
    const failed = { tag: 'jobFailed', message: 'x' };
    expect(decode(failed, INBOUND_TAGS.coordinatorToJobClient).ok).toBe(true);
    expect(rejection(failed, INBOUND_TAGS.coordinatorToHostAgent)).toMatch(/^unexpected/);
    expect(rejection({ tag: 'openJob', config: engineConfig }, INBOUND_TAGS.hostAgentToCoordinator)).toMatch(
      /^unexpected/,
    );
  });
});
