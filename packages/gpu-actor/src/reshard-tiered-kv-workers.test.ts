import { join } from 'node:path';
import {
  Checkpoint,
  dtypeByteSize,
  type ParallelConfig,
  planReshard,
  type ReshardRoute,
} from '@seesaw/model';
import type { StepKvSwap } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { PhasedWorkerReplica } from '../test/phased-worker-replica-test-support.ts';
import { decodeStep, prefillStep, referenceCheck, referenceRun } from '../test/tiered-kv-test-steps.ts';

// The seesaw cycle on real device workers and a kv-store worker: a prompt prefilled under P2 is
// written back to host slots during its prefill, the replica re-shards to T2 (flushing the puts),
// the sequence is prefetched into other blocks and decodes under T2 (its sampling settings were
// announced under P2 only), is written back again by a decode step, the replica re-shards back
// to P2, and the sequence is prefetched once more and decodes. Tokens equal, and logits are
// within the TP/PP tests' bound of, one in-process device on which the sequence never moved.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const BLOCK_SIZE = 8;
const PROMPT = 20;
const RELATIVE_TOLERANCE = 1e-4;
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
const NUM_DECODES = 6;

describe('tiered KV across re-shards on device workers', () => {
  it('P2 prefill + write-back -> T2 prefetch + decode + write-back -> P2 prefetch + decode', async () => {
    const expected = await referenceRun(FIXTURE, BLOCK_SIZE, PROMPT, NUM_DECODES, [5, 2, 7, 1]);
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
    const check = referenceCheck(expected, RELATIVE_TOLERANCE);
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
        await replica.execute({ ...prefillStep(stepId++, 1, PROMPT, [5, 2, 7]), kvWriteBacks: [writeBack] }),
        0,
      );

      await switchTo(1, 1, 'p2p');
      // Under T2 another prompt takes sequence 1's old blocks while it is prefetched elsewhere.
      const t2Blocks = [0, 9, 4];
      const other = prefillStep(stepId++, 2, 24, [5, 2, 7]);
      other.prefetches = [{ ...writeBack, blockIds: t2Blocks }];
      await replica.execute(other);
      let token = expected[0]!.sampled[0]!.tokenId;
      for (let i = 1; i <= 3; i++) {
        const result = await replica.execute(decodeStep(stepId++, PROMPT, token, i, t2Blocks));
        check(result, i);
        token = result.sampled[0]!.tokenId;
      }
      // Output 4 is computed under T2 and, with every position so far, written back.
      const lastT2 = decodeStep(stepId++, PROMPT, token, 4, t2Blocks);
      lastT2.kvWriteBacks = [{ seqId: 1, blockIds: t2Blocks, slotIds: slots, numTokens: PROMPT + 4 }];
      const written = await replica.execute(lastT2);
      check(written, 4);
      token = written.sampled[0]!.tokenId;

      await switchTo(2, 0, 'host');
      const p2Blocks = [3, 8, 10, 6];
      const park = prefillStep(stepId++, 3, 9, [0, 9]);
      park.prefetches = [{ seqId: 1, blockIds: p2Blocks.slice(0, 3), slotIds: slots, numTokens: PROMPT + 4 }];
      await replica.execute(park);
      for (let i = 5; i <= NUM_DECODES; i++) {
        const result = await replica.execute(decodeStep(stepId++, PROMPT, token, i, p2Blocks));
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
