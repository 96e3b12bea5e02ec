import { join } from 'node:path';
import {
  Checkpoint,
  dtypeByteSize,
  type ParallelConfig,
  planReshard,
  type ReshardRoute,
} from '@seesaw/model';
import type { DeviceSamplingParams, StepBatch, StepKvSwap, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { CpuDevice } from './cpu-device.ts';
import { PhasedWorkerReplica } from './phased-worker-replica-test-support.ts';

// The seesaw cycle on real device workers and a kv-store worker: a prompt prefilled under P2 is
// written back to host slots during its prefill, the replica re-shards to T2 (flushing the puts),
// the sequence is prefetched into other blocks and decodes under T2 (its sampling settings were
// announced under P2 only), is written back again by a decode step, the replica re-shards back
// to P2, and the sequence is prefetched once more and decodes. Tokens equal, and logits are
// within the TP/PP tests' bound of, one in-process device on which the sequence never moved.

const FIXTURE = join(import.meta.dirname, '../../../../shared/fixtures/tiny-llama-bf16');
const BLOCK_SIZE = 8;
const PROMPT = 20;
const RELATIVE_TOLERANCE = 1e-4;
const GREEDY: DeviceSamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
const NUM_DECODES = 6;

function tokens(count: number, offset: number): number[] {
  return Array.from({ length: count }, (_, i) => 3 + ((i * 37 + offset * 101) % 2000));
}

function prefill(stepId: number, seqId: number, length: number, blockTable: number[]): StepBatch {
  return {
    stepId,
    addedSeqs: [{ seqId, sampling: GREEDY }],
    releasedSeqIds: [],
    seqs: [
      { seqId, tokenIds: tokens(length, seqId), startPos: 0, blockTable, isSampled: true, outputIndex: 0 },
    ],
  };
}

/** The step producing output `outputIndex` of sequence 1 from `token`. */
function decode(stepId: number, token: number, outputIndex: number, blockTable: number[]): StepBatch {
  return {
    stepId,
    addedSeqs: [],
    releasedSeqIds: [],
    isLogitsReturned: true,
    seqs: [
      {
        seqId: 1,
        tokenIds: [token],
        startPos: PROMPT + outputIndex - 1,
        blockTable,
        isSampled: true,
        outputIndex,
      },
    ],
  };
}

async function reference(): Promise<StepResult[]> {
  const device = await CpuDevice.load(FIXTURE, { blockSize: BLOCK_SIZE, kvCacheBytes: 4 << 20 });
  const blocks = [5, 2, 7, 1];
  const results = [await device.execute(prefill(0, 1, PROMPT, blocks))];
  for (let i = 1; i <= NUM_DECODES; i++)
    results.push(await device.execute(decode(i, results[i - 1]!.sampled[0]!.tokenId, i, blocks)));
  device.close();
  return results;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / maxRef;
}

describe('tiered KV across re-shards on device workers', () => {
  it('P2 prefill + write-back -> T2 prefetch + decode + write-back -> P2 prefetch + decode', async () => {
    const expected = await reference();
    const checkpoint = Checkpoint.open(FIXTURE);
    const replica = await PhasedWorkerReplica.start({
      modelDir: FIXTURE,
      layouts: ['D1T1P2', 'D1T2P1'],
      blockSize: BLOCK_SIZE,
      deviceMemoryBytes: 16 << 20,
      numHostSlots: 16,
    });
    const switchTo = (reshardId: number, layout: number, route: ReshardRoute) => {
      const from: ParallelConfig = replica.layouts[replica.layout]!;
      const plan = planReshard(
        checkpoint.config,
        (name) => ({
          dtypeBytes: dtypeByteSize(checkpoint.info(name).dtype),
          shape: checkpoint.info(name).shape,
        }),
        from,
        replica.layouts[layout]!,
        { route, rates: RATES },
      );
      return replica.reshard(reshardId, layout, plan, false);
    };
    const check = (result: StepResult, outputIndex: number) => {
      expect(result.sampled, `output ${outputIndex}`).toEqual(expected[outputIndex]!.sampled);
      if (outputIndex > 0)
        expect(relativeError(result.logits![0]!, expected[outputIndex]!.logits![0]!)).toBeLessThan(
          RELATIVE_TOLERANCE,
        );
    };
    try {
      await replica.load(false);
      let stepId = 0;
      const slots = [6, 1, 3];
      const writeBack: StepKvSwap = {
        seqId: 1,
        blockIds: [5, 2, 7],
        slotIds: slots,
        numTokens: PROMPT,
      };
      check(
        await replica.execute({ ...prefill(stepId++, 1, PROMPT, [5, 2, 7]), kvWriteBacks: [writeBack] }),
        0,
      );

      await switchTo(1, 1, 'p2p');
      // Under T2 another prompt takes sequence 1's old blocks while it is prefetched elsewhere.
      const t2Blocks = [0, 9, 4];
      const other = prefill(stepId++, 2, 24, [5, 2, 7]);
      other.prefetches = [{ ...writeBack, blockIds: t2Blocks }];
      await replica.execute(other);
      let token = expected[0]!.sampled[0]!.tokenId;
      for (let i = 1; i <= 3; i++) {
        const result = await replica.execute(decode(stepId++, token, i, t2Blocks));
        check(result, i);
        token = result.sampled[0]!.tokenId;
      }
      // Output 4 is computed under T2 and, with every position so far, written back.
      const lastT2 = decode(stepId++, token, 4, t2Blocks);
      lastT2.kvWriteBacks = [{ seqId: 1, blockIds: t2Blocks, slotIds: slots, numTokens: PROMPT + 4 }];
      const written = await replica.execute(lastT2);
      check(written, 4);
      token = written.sampled[0]!.tokenId;

      await switchTo(2, 0, 'host');
      const p2Blocks = [3, 8, 10, 6];
      const park = prefill(stepId++, 3, 9, [0, 9]);
      park.prefetches = [{ seqId: 1, blockIds: p2Blocks.slice(0, 3), slotIds: slots, numTokens: PROMPT + 4 }];
      await replica.execute(park);
      for (let i = 5; i <= NUM_DECODES; i++) {
        const result = await replica.execute(decode(stepId++, token, i, p2Blocks));
        check(result, i);
        token = result.sampled[0]!.tokenId;
      }
      expect(replica.strayErrors).toEqual([]);
    } finally {
      await replica.close();
      checkpoint.close();
    }
  }, 60_000);
});
