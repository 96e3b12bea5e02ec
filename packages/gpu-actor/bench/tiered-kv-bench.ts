/**
 * What tiered-KV write-backs cost a prefill step on real device workers with a kv-store worker:
 * the same batched prefill with and without `kvWriteBacks` for every prompt (layer-by-layer puts
 * overlapped with the next layer), then a prefetch of all of them beside a decode step.
 * Run: pnpm tsx packages/gpu-actor/bench/tiered-kv-bench.ts [D1T1P1|D1T2P1|D1T1P2] [numSeqs] [promptLen]
 */
import { join } from 'node:path';
import { parseParallelConfig, type StepBatch, type StepKvSwap, type StepResult } from '@seesaw/protocol';
import { WorkerReplica } from '../test/worker-replica-test-support.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const BLOCK_SIZE = 16;
const [parallel = 'D1T1P1', seqsArg = '8', lengthArg = '128'] = process.argv.slice(2);
const { dp, tp, pp } = parseParallelConfig(parallel);
if (dp !== 1) throw new Error(`layout ${parallel}: one replica only (D1)`);
const numSeqs = Number(seqsArg);
const promptLen = Number(lengthArg);
const blocksPerSeq = Math.ceil(promptLen / BLOCK_SIZE);
const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };

const replica = await WorkerReplica.start({
  modelDir: FIXTURE,
  tp,
  pp,
  blockSize: BLOCK_SIZE,
  deviceMemoryBytes: 256 << 20,
  numHostSlots: numSeqs * blocksPerSeq,
});
let stepId = 0;
let seqId = 0;

function prefillStep(withWriteBacks: boolean): { step: StepBatch; swaps: StepKvSwap[] } {
  const seqs = Array.from({ length: numSeqs }, (_, s) => ({
    seqId: seqId++,
    tokenIds: Array.from({ length: promptLen }, (_, i) => 3 + ((i * 31 + s * 7) % 2000)),
    startPos: 0,
    blockTable: Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
    isSampled: true,
    outputIndex: 0,
  }));
  const swaps = seqs.map((seq, s) => ({
    seqId: seq.seqId,
    blockIds: seq.blockTable,
    slotIds: Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
    numTokens: promptLen,
  }));
  const step: StepBatch = {
    stepId: stepId++,
    addedSeqs: seqs.map((seq) => ({ seqId: seq.seqId, sampling: greedy })),
    releasedSeqIds: seqs.map((seq) => seq.seqId - numSeqs).filter((id) => id >= 0),
    seqs,
  };
  if (withWriteBacks) step.kvWriteBacks = swaps;
  return { step, swaps };
}

async function timed(step: StepBatch): Promise<{ ms: number; result: StepResult }> {
  const start = performance.now();
  const result = await replica.execute(step);
  return { ms: performance.now() - start, result };
}

const kvBytes = numSeqs * promptLen * 4 * 2 * 4 * 32 * 4; // tokens x layers x K/V x heads x dim x f32
console.log(
  `${parallel}: ${numSeqs} prompts x ${promptLen} tokens, ${(kvBytes / 2 ** 20).toFixed(1)} MiB of KV`,
);
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
const plain: number[] = [];
const written: number[] = [];
const waits: number[] = [];
const computes: number[] = [];
for (let round = 0; round < 14; round++) {
  const withWriteBacks = round % 2 === 1;
  const { ms, result } = await timed(prefillStep(withWriteBacks).step);
  if (round < 2) continue; // warm-up
  (withWriteBacks ? written : plain).push(ms);
  if (result.kvTimings) {
    waits.push(result.kvTimings.writeBackWaitMs);
    computes.push(result.kvTimings.computeMs);
  }
}
console.log(
  `prefill step, median of ${plain.length}: without write-backs ${median(plain).toFixed(1)} ms, with ${median(written).toFixed(1)} ms ` +
    `(compute ${median(computes).toFixed(1)} ms, waited for acks after compute ${median(waits).toFixed(2)} ms)`,
);
// Prefetch every prompt of the last round into other blocks beside a one-token step, then wait for them.
const { swaps } = prefillStep(true);
const last = await timed(prefillStep(true).step);
console.log(`prefill with write-backs: step ${last.ms.toFixed(1)} ms`);
const offset = 2 * numSeqs * blocksPerSeq;
const prefetches = swaps.map((swap) => ({
  ...swap,
  seqId: swap.seqId + numSeqs,
  blockIds: swap.blockIds.map((b) => b + offset),
}));
const probe = {
  seqId: 1e6,
  tokenIds: [5],
  startPos: 0,
  blockTable: [offset - 1],
  isSampled: true,
  outputIndex: 0,
};
const carrier = await timed({
  stepId: stepId++,
  addedSeqs: [{ seqId: 1e6, sampling: greedy }],
  releasedSeqIds: [],
  seqs: [probe],
  prefetches,
});
const user = await timed({
  stepId: stepId++,
  addedSeqs: [],
  releasedSeqIds: [1e6],
  seqs: prefetches.map((p, s) => ({
    seqId: p.seqId,
    tokenIds: [7],
    startPos: promptLen,
    blockTable: [...p.blockIds, offset + 3 * numSeqs * blocksPerSeq + s],
    isSampled: true,
    outputIndex: 1,
  })),
});
console.log(
  `prefetch carrier step ${carrier.ms.toFixed(1)} ms; next decode step ${user.ms.toFixed(1)} ms, waited ${user.result.kvTimings?.prefetchWaitMs.toFixed(1)} ms, prefetches took ${(carrier.result.kvTimings?.prefetchMs ?? 0) + (user.result.kvTimings?.prefetchMs ?? 0)} ms summed`,
);
await replica.close();
