import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpoint, parseParallelConfig } from '@seesaw/model';
import type { StepBatch } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, compareWithSingleDevice } from '../test/sharded-test-support.ts';
import { CpuDevice } from './cpu-device.ts';
import { InProcessPipeline } from './in-process-pipeline.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
// TP and PP logits are bit-equal to one device's: a TP rank's o_proj / down_proj partial is a
// subtree of the canonical reduction tree and the all-reduce completes it (docs/determinism.md).

const deviceOptions = { numThreads: 1, kvCacheBytes: 8 * 1024 * 1024, blockSize: BLOCK_SIZE };

let workDir = '';
let biasTiedDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-sharded-'));
  biasTiedDir = join(workDir, 'tiny-f16-bias-tied');
  await generateCheckpoint({
    shape: 'tiny',
    seed: 5,
    dtype: 'f16',
    outDir: biasTiedDir,
    attentionBias: true,
    tieWordEmbeddings: true,
  });
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('sharded forward against one device', () => {
  let single: CpuDevice;
  beforeAll(async () => {
    single = await CpuDevice.load(FIXTURE, deviceOptions);
  });

  it.each(['T2', 'T4', 'P2', 'P4', 'T2P2'])('%s: same greedy tokens, bit-identical logits', async (name) => {
    const parallel = parseParallelConfig(name);
    const sharded = await InProcessPipeline.load(FIXTURE, parallel, {
      ...deviceOptions,
      isRankAgreementChecked: true,
    });
    const error = await compareWithSingleDevice(sharded, single, single.config.vocabSize);
    console.log(`${name}: max |logit diff| / max |logit| = ${error.toExponential(2)}`);
    if (parallel.tp === 1) {
      expect(error).toBe(0);
    } else {
      expect(error).toBe(0);
    }
    sharded.close();
  });

  it('T2P2 with q/k/v biases and a tied, vocab-parallel lm_head', async () => {
    const reference = await CpuDevice.load(biasTiedDir, deviceOptions);
    const sharded = await InProcessPipeline.load(
      biasTiedDir,
      { tp: 2, pp: 2 },
      { ...deviceOptions, isRankAgreementChecked: true },
    );
    const error = await compareWithSingleDevice(sharded, reference, reference.config.vocabSize);
    expect(error).toBe(0);
  });
});

describe('stage inputs and groups', () => {
  it('rejects a later stage without the previous hidden state, and TP without a group', async () => {
    const stage1 = await CpuDevice.load(FIXTURE, {
      ...deviceOptions,
      shard: { tp: 1, tpRank: 0, pp: 2, ppStage: 1 },
    });
    const step: StepBatch = {
      stepId: 0,
      addedSeqs: [],
      releasedSeqIds: [],
      seqs: [{ seqId: 1, tokenIds: [3, 4], startPos: 0, blockTable: [0], isSampled: false, outputIndex: 0 }],
    };
    await expect(stage1.executeStage(step)).rejects.toThrow(
      /needs the previous stage's hidden state of 2 x 256/,
    );
    await expect(stage1.execute(step)).rejects.toThrow(/use executeStage/);
    await expect(
      CpuDevice.load(FIXTURE, { ...deviceOptions, shard: { tp: 2, tpRank: 0, pp: 1, ppStage: 0 } }),
    ).rejects.toThrow(/needs a tensor-parallel group/);
  });
});
