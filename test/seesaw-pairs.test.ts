/**
 * Every kind of (prefill, decode) pair on real device workers gives the single device's greedy
 * tokens: decode PP larger than prefill PP (T2 -> P2, decode micro-batches in flight), four
 * devices with mixed TP/PP both ways, and the generated `small` model (12 layers, 768 hidden)
 * besides the tiny fixture. A host tier of a few prompts forces several round trips of
 * re-shards and KV through the host.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeesawEngine } from '@seesaw/coordinator';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import { generateCheckpoint, loadModelConfig } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, FIXTURE, makeRequests, runReference, startCluster } from './cluster-test-support.ts';

const HOST_SLOTS = 30;

async function expectPairMatchesReference(
  modelDir: string,
  prefill: string,
  decode: string,
  deviceMemoryBytes?: number,
): Promise<void> {
  const config = loadModelConfig(modelDir);
  const requests = makeRequests(config.vocabSize, 11);
  const reference = await runReference(modelDir, requests);
  const cluster = await startCluster(modelDir, prefill, {
    decodeParallel: decode,
    hostKvBytes: HOST_SLOTS * slotBytes(hostKvLayoutFor(config, BLOCK_SIZE)),
    ...(deviceMemoryBytes ? { deviceMemoryBytes } : {}),
  });
  try {
    const engine = new SeesawEngine(cluster.phasedReplicas[0], {
      maxModelLen: config.maxPositionEmbeddings,
      eosTokenIds: config.eosTokenIds,
      maxNumBatchedTokens: 64,
      maxNumSeqs: 8,
      hostKv: cluster.engineHostKv!,
    });
    for (const request of requests) engine.addRequest(request);
    const outputs = new Map<string, number[]>();
    const stats = await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
    for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
    expect(stats.numFinishedRequests).toBe(requests.length);
    expect(stats.numSwitches).toBeGreaterThanOrEqual(3);
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}

describe('Seesaw pairs give the single-device tokens', () => {
  it.each([
    ['T2', 'P2'],
    ['P4', 'T2P2'],
    ['T2P2', 'T4'],
  ])('tiny fixture: prefill %s, decode %s', async (prefill, decode) => {
    await expectPairMatchesReference(FIXTURE, prefill, decode);
  });

  describe('generated small model', () => {
    let dir = '';
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'seesaw-pairs-small-'));
      await generateCheckpoint({ shape: 'small', dtype: 'bf16', seed: 3, outDir: dir });
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('prefill P2, decode T2', async () => {
      await expectPairMatchesReference(dir, 'P2', 'T2', 400 << 20);
    });
  });
});
