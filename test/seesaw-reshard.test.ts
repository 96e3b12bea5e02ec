/**
 * A phased LocalCluster (real device workers) re-sharding between a prefill layout and a decode
 * layout must answer exactly like one in-process CpuDevice in every layout it passes through:
 * the same greedy tokens through an Engine before any switch, after P2 -> T2 and after
 * P2 -> T2 -> P2, the same logits within the TP tolerance, and, after the round trip, the very
 * same weights (sha256 digests equal to those of the initial load). Both weight routes run:
 * peer-to-peer (every byte from a peer, none from the host) and host (every byte from the host
 * weight cache, or with the cache off from the checkpoint; none from a peer).
 */
import {
  DeviceLostError,
  Engine,
  type EngineRequest,
  type LocalCluster,
  type ReplicaDevice,
  type ReplicaReshardStats,
} from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { Checkpoint, loadModelConfig, parseParallelConfig, planReshard } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithSingleDevice } from '../packages/gpu-actor/test/sharded-test-support.ts';
import {
  BLOCK_SIZE,
  DEVICE_MEMORY_BYTES,
  ENGINE_OPTIONS,
  FIXTURE,
  makeRequests,
  runReference,
  startCluster,
} from './cluster-test-support.ts';

/** The requests through a fresh Engine on the replica, in whatever layout it is in now. */
async function runOnReplica(
  replica: ReplicaDevice,
  requests: EngineRequest[],
  maxModelLen: number,
  eosTokenIds: number[],
): Promise<Map<string, number[]>> {
  const engine = new Engine(replica, { ...ENGINE_OPTIONS, maxModelLen, eosTokenIds });
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, number[]>();
  await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
  return outputs;
}

/** What the planner promises for one switch of one replica, from the checkpoint header. */
function plannedBytes(from: string, to: string, route: 'p2p' | 'host' | 'auto', isHeldReloaded: boolean) {
  const checkpoint = Checkpoint.open(FIXTURE);
  try {
    const tensorBytes = (name: string) => {
      const info = checkpoint.info(name);
      const numElements = info.shape.reduce((a, b) => a * b, 1);
      return { dtypeBytes: info.byteLength / numElements, shape: info.shape };
    };
    const plan = planReshard(
      checkpoint.config,
      tensorBytes,
      parseParallelConfig(from),
      parseParallelConfig(to),
      {
        route,
        rates: { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 },
        isHeldReloaded,
      },
    );
    return {
      received: plan.devices.reduce((sum, d) => sum + d.bytesReceived, 0),
      fromHost: plan.devices.reduce((sum, d) => sum + d.bytesFromHost, 0),
      bytesMoved: plan.bytesMoved,
    };
  } finally {
    checkpoint.close();
  }
}

function expectRoute(
  stats: ReplicaReshardStats,
  route: 'p2p' | 'host' | 'auto',
  from: string,
  to: string,
  hostWeightCache: boolean,
): void {
  // With the host weight cache, the host route reloads each device's whole new shard from it.
  const planned = plannedBytes(from, to, route, hostWeightCache);
  expect(stats.route).toBe(route);
  expect(stats.bytesMoved).toBe(planned.bytesMoved);
  expect(stats.bytesFromHost).toBe(planned.fromHost);
  expect(stats.bytesFromPeers).toBe(planned.received);
  if (route === 'p2p') expect(stats.bytesFromHost).toBe(0);
  if (route === 'host') expect(stats.bytesFromPeers).toBe(0);
  expect(stats.bytesMoved).toBeGreaterThan(0);
  for (const device of stats.devices) expect(device.peakWeightBytes).toBeLessThanOrEqual(DEVICE_MEMORY_BYTES);
}

describe('phased LocalCluster re-sharding on the tiny fixture', () => {
  const config = loadModelConfig(FIXTURE);
  const requests = makeRequests(config.vocabSize, 31);
  const maxModelLen = config.maxPositionEmbeddings;
  let reference = new Map<string, number[]>();
  let single: CpuDevice;

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
    single = await CpuDevice.load(FIXTURE, { numThreads: 1, blockSize: BLOCK_SIZE, kvCacheBytes: 16 << 20 });
  });
  afterAll(() => single?.close());

  it.each([
    ['P2', 'T2', 'p2p', 'on'],
    ['P2', 'T2', 'host', 'on'],
    ['P2', 'T2', 'host', 'off'],
    ['P4', 'T2P2', 'auto', 'on'],
  ] as const)(
    '%s -> %s by the %s route, host weight cache %s, gives the single device tokens before, between and after switches',
    async (prefill, decode, route, cache) => {
      const lines: string[] = [];
      const cluster: LocalCluster = await startCluster(FIXTURE, prefill, {
        decodeParallel: decode,
        reshardRoute: route,
        hostWeightCache: cache === 'on',
        isWeightDigestReturned: true,
        log: (line) => {
          if (line.startsWith('reshard')) lines.push(line);
          else if (!line.includes('accepted') && !line.includes('host weight cache')) console.warn(line);
        },
      });
      try {
        const [prefillLayout, decodeLayout] = [prefill, decode].map(parseParallelConfig);
        const numDevices = prefillLayout.tp * prefillLayout.pp;
        expect(cluster.name).toBe(`${prefill} -> ${decode}`);
        expect(() => cluster.replicas).toThrow(/phased cluster/);
        const [replica] = cluster.phasedReplicas;
        const loadDigests = [...replica.weightDigests];
        expect(loadDigests.every((digest) => /^[0-9a-f]{64}$/.test(digest ?? ''))).toBe(true);
        expect(new Set(loadDigests).size).toBe(numDevices);
        expect(replica.maxInFlight).toBe(prefillLayout.pp);

        const check = async (label: string) => {
          const error = await compareWithSingleDevice(replica, single, config.vocabSize);
          expect(error, label).toBe(0);
          const outputs = await runOnReplica(replica, requests, maxModelLen, config.eosTokenIds);
          expect(outputs.size, label).toBe(requests.length);
          for (const [requestId, tokens] of reference)
            expect(outputs.get(requestId), `${label} ${requestId}`).toEqual(tokens);
        };

        await check(`${prefill} before any switch`);
        const toDecode = await replica.switchTo('decode');
        expectRoute(toDecode, route, prefill, decode, cache === 'on');
        // With the cache, loading filled both layouts' shards (LoadShard.otherLayoutPosition).
        expect(toDecode.devices.map((done) => done.hostFillMs)).toEqual(
          toDecode.devices.map(() => undefined),
        );
        expect(replica.phase).toBe('decode');
        expect(replica.maxInFlight).toBe(decodeLayout.pp);
        expect(replica.numKvBlocks).toBe(toDecode.numKvBlocks);
        expect(replica.weightDigests).not.toEqual(loadDigests);
        await check(`${decode} after ${prefill} -> ${decode}`);

        const toPrefill = await replica.switchTo('prefill');
        expectRoute(toPrefill, route, decode, prefill, cache === 'on');
        expect(replica.weightDigests).toEqual(loadDigests);
        await check(`${prefill} after ${prefill} -> ${decode} -> ${prefill}`);
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(
          new RegExp(
            `^reshard prefill ${prefill} -> decode ${decode}: [\\d.]+ [KM]iB moved \\(p2p .+, host .+\\) in \\d+ ms$`,
          ),
        );
        expect(lines[1]).toMatch(new RegExp(`^reshard decode ${decode} -> prefill ${prefill}: `));
      } finally {
        await cluster.close({ mode: 'drain' });
      }
    },
  );

  it('fails the switch with the lost device, not a hang, when a worker dies while re-sharding', async () => {
    const cluster = await startCluster(FIXTURE, 'P2', { decodeParallel: 'T2', reshardRoute: 'p2p' });
    try {
      const [replica] = cluster.phasedReplicas;
      // Caught at once: the switch may fail before terminate() resolves.
      const switching = replica.switchTo('decode').catch((e: unknown) => e);
      await cluster.actors[1].worker.terminate();
      const error = await switching;
      expect(error).toBeInstanceOf(DeviceLostError);
      expect((error as DeviceLostError).deviceName).toMatch(/^device 1 /);
      expect(replica.failure).toBe(error);
      await expect(replica.switchTo('decode')).rejects.toBe(error);
    } finally {
      await cluster.close({ mode: 'abort' });
    }
  });

  it('refuses a decode layout with other devices per replica or another dp, or a switch that cannot fit', async () => {
    await expect(startCluster(FIXTURE, 'P2', { decodeParallel: 'T4' })).rejects.toThrow(
      /must keep the prefill configuration P2's dp \(1\) and devices per replica \(2\)/,
    );
    await expect(startCluster(FIXTURE, 'D2', { decodeParallel: 'T2' })).rejects.toThrow(
      /devices per replica/,
    );
  });
});
