/**
 * One valid example of every message tag, with fresh random tensors, for round-trip tests
 * over every transport. Every tag in MESSAGE_SCHEMAS must appear here (a test checks it).
 */

import type { Message } from '../src/messages/index.ts';
import type { DeviceReshardPlanData } from '../src/messages/reshard-plan-data.ts';
import type { DType, Tensor, TensorData } from '../src/tensor.ts';
import { randomInt } from './random.ts';

export interface Sample {
  message: Message;
  tensors: Tensor[];
}

export function randomTensor(random: () => number, dtype: DType, shape: number[]): Tensor {
  const length = shape.reduce((a, b) => a * b, 1);
  let data: TensorData;
  if (dtype === 'f32') data = Float32Array.from({ length }, () => random() * 2 - 1);
  else if (dtype === 'i32') data = Int32Array.from({ length }, () => randomInt(random, 2 ** 32) - 2 ** 31);
  else if (dtype === 'u8') data = Uint8Array.from({ length }, () => randomInt(random, 256));
  else data = Uint16Array.from({ length }, () => randomInt(random, 65536));
  return { dtype, shape, data };
}

export function sampleMessages(random: () => number): Sample[] {
  const vocab = 37;
  const range = (start: number, end: number) => ({ start, end });
  const kvAddress = {
    requestId: 9,
    seqId: 4,
    layers: range(1, 3),
    heads: range(0, 2),
    tokens: range(16, 21),
  };
  const kvTensor = () => randomTensor(random, 'bf16', [2, 2, 2, 5, 8]);
  const none = (message: Message): Sample => ({ message, tensors: [] });
  return [
    none({ tag: 'hello', role: 'device', name: 'device-0', token: 's3cret', protocolVersion: 1 }),
    none({ tag: 'welcome', role: 'coordinator', name: 'coord', protocolVersion: 1 }),
    none({ tag: 'refused', reason: 'wrong token' }),
    none({ tag: 'heartbeat', seq: 12, sentAtMs: 1_764_000_000_000.5 }),
    none({ tag: 'shutdown', mode: 'drain' }),
    none({ tag: 'protocolError', code: 'unknownTag', message: 'unknown tag "x"', rejectedTag: 'x' }),
    none({
      tag: 'loadShard',
      modelDir: '/models/tiny',
      parallelism: 'D1T2P2',
      dpRank: 0,
      tpRank: 1,
      ppStage: 1,
      layers: range(2, 4),
      numThreads: 2,
      deviceMemoryBytes: 8 * 2 ** 30,
      blockSize: 16,
      kvDtype: 'bf16',
    }),
    none({
      tag: 'step',
      batch: {
        stepId: 7,
        addedSeqs: [{ seqId: 3, sampling: { temperature: 0.7, topP: 0.9, topK: 40, seed: 12345 } }],
        releasedSeqIds: [1, 2],
        seqs: [
          { seqId: 3, tokenIds: [5, 6, 7], startPos: 0, blockTable: [10], isSampled: true, outputIndex: 0 },
          { seqId: 4, tokenIds: [9], startPos: 33, blockTable: [2, 3, 4], isSampled: true, outputIndex: 5 },
        ],
        isLogitsReturned: true,
      },
    }),
    none({ tag: 'swapOut', swapId: 1, seqId: 4, blockIds: [2, 3], slotIds: [100, 101] }),
    none({ tag: 'swapIn', swapId: 2, seqId: 4, blockIds: [7, 8], slotIds: [100, 101] }),
    none({
      tag: 'reshard',
      reshardId: 3,
      layout: 1,
      plan: sampleReshardPlan(),
      isWeightDigestReturned: true,
    }),
    none({ tag: 'ready', numKvBlocks: 512, weightBytes: 3_000_000, kvCacheBytes: 8_000_000 }),
    none({
      tag: 'reshardDone',
      reshardId: 3,
      numKvBlocks: 700,
      weightBytes: 2_000_000,
      kvCacheBytes: 9_000_000,
      bytesKept: 1_000_000,
      bytesReceived: 600_000,
      bytesSent: 500_000,
      bytesFromHost: 400_000,
      peakWeightBytes: 3_500_000,
      ms: 12.5,
      weightDigest: 'ab'.repeat(32),
    }),
    {
      message: {
        tag: 'stepDone',
        stepId: 7,
        sampled: [
          { seqId: 3, tokenId: 11 },
          { seqId: 4, tokenId: 0 },
        ],
        hasLogits: true,
      },
      tensors: [randomTensor(random, 'f32', [vocab]), randomTensor(random, 'f32', [vocab])],
    },
    none({
      tag: 'stepKv',
      stepId: 7,
      kvTimings: {
        computeMs: 3.5,
        prefetchWaitMs: 0.25,
        prefetchMs: 1.5,
        writeBackMs: 2,
        writeBackWaitMs: 0.5,
        prefetchesNeeded: 2,
        prefetchesLanded: 1,
        prefetchBytesNeeded: 8192,
        prefetchBytesLanded: 4096,
        spans: [
          { name: 'compute', startMs: 1_765_000_000_000.5, endMs: 1_765_000_000_004 },
          { name: 'prefetch', startMs: 1_765_000_000_000, endMs: 1_765_000_000_001.5 },
        ],
      },
    }),
    none({ tag: 'clockProbe', seq: 2, sentAtMs: 1_765_000_000_000.25 }),
    none({ tag: 'clockReply', seq: 2, sentAtMs: 1_765_000_000_000.25, deviceMs: 1_765_000_003_000.75 }),
    none({ tag: 'swapDone', swapId: 1, seqId: 4 }),
    none({ tag: 'error', code: 'stepFailed', message: 'out of KV blocks', requestStepId: 7 }),
    none({ tag: 'reserve', requestId: 1, seqId: 4, numSlots: 3 }),
    none({ tag: 'release', seqId: 4, slotIds: [100, 101, 102] }),
    none({ tag: 'capacityQuery', requestId: 2 }),
    none({ tag: 'reserved', requestId: 1, seqId: 4, slotIds: [100, 101, 102] }),
    none({ tag: 'reserveFailed', requestId: 1, seqId: 4, reason: 'only 2 free slots' }),
    none({ tag: 'capacity', requestId: 2, numSlots: 4096, numFreeSlots: 4000, slotBytes: 65536 }),
    {
      message: {
        tag: 'allReduceChunk',
        opId: 6,
        stepId: 7,
        round: 1,
        chunkIndex: 1,
        numChunks: 2,
        fromRank: 0,
      },
      tensors: [randomTensor(random, 'f32', [128])],
    },
    {
      message: { tag: 'activations', stepId: 7, microBatch: 0, fromStage: 0, numTokens: 3 },
      tensors: [randomTensor(random, 'f16', [3, 16])],
    },
    {
      message: {
        tag: 'weightSlice',
        reshardId: 3,
        name: 'model.layers.2.self_attn.o_proj.weight',
        axis: 'columns',
        start: 128,
        end: 136,
      },
      tensors: [randomTensor(random, 'u8', [16, 16])],
    },
    none({
      tag: 'weightSliceTaken',
      reshardId: 3,
      name: 'model.layers.2.self_attn.o_proj.weight',
      axis: 'columns',
      start: 128,
      end: 136,
    }),
    { message: { tag: 'kvPut', ...kvAddress }, tensors: [kvTensor()] },
    none({ tag: 'kvGet', ...kvAddress }),
    none({ tag: 'kvGet', ...kvAddress, slotIds: [7, 0, 3] }),
    { message: { tag: 'kvData', ...kvAddress }, tensors: [kvTensor()] },
    none({ tag: 'kvPutDone', requestId: 9 }),
    none({
      tag: 'kvCacheShare',
      requestId: 4,
      region: 1,
      layers: { start: 2, end: 4 },
      heads: { start: 0, end: 2 },
      dtype: 'bf16',
      numBlocks: 12,
      blockSize: 16,
      headDim: 64,
      keyOffsets: [0, 98304],
      valueOffsets: [49152, 147456],
    }),
    none({ tag: 'kvCacheShared', requestId: 4 }),
    none({ tag: 'kvCopyOut', ...kvAddress, slotIds: [7, 0, 3], blockIds: [5, 1, 9] }),
    none({ tag: 'kvCopyIn', ...kvAddress, blockIds: [2, 4, 6] }),
    none({ tag: 'kvCopyDone', requestId: 9 }),
    none({ tag: 'kvError', requestId: 9, message: 'no such slice' }),
    none({ tag: 'agentJoin', hostName: 'host-a', numDevices: 2 }),
    none({ tag: 'deviceChannel', jobId: 3, device: 1 }),
    none({ tag: 'agentJobError', jobId: 3, message: 'spawn failed' }),
    none({ tag: 'spawnReplica', jobId: 3, dpRank: 1, firstDevice: 2, tp: 2, pp: 1, deviceToken: 't0k' }),
    none({ tag: 'releaseJob', jobId: 3 }),
    none({
      tag: 'openJob',
      config: {
        model: { dir: '/models/tiny' },
        parallel: { layout: 'D2', numDevices: 2, numThreadsPerDevice: 1 },
        cache: {
          blockSize: 16,
          kvCacheBytes: 1 << 29,
          hostKvBytes: 1 << 30,
          preemptionMode: 'swap',
          kvDtype: 'auto',
        },
        scheduler: {
          maxNumBatchedTokens: 512,
          maxNumSeqs: 8,
          prefillTokenBudget: 4096,
          watermark: 0.1,
          hostLowMark: 0.2,
        },
      },
    }),
    none({
      tag: 'submitRequests',
      requests: [
        {
          requestId: 'r-1',
          promptTokenIds: [5, 6, 7],
          sampling: {
            maxTokens: 4,
            temperature: 0,
            topP: 1,
            topK: 0,
            seed: null,
            stopTokenIds: [2],
            ignoreEos: false,
          },
        },
      ],
    }),
    none({
      tag: 'jobReady',
      jobId: 3,
      layout: 'D2 on host-a (1 device), host-b (1 device)',
      weightBytes: 1 << 20,
      kvCacheBytes: 1 << 24,
      numKvBlocks: 512,
      blockSize: 16,
      maxModelLen: 2048,
    }),
    none({
      tag: 'requestFinished',
      output: {
        requestId: 'r-1',
        promptTokenIds: [5, 6, 7],
        outputTokenIds: [9, 2],
        finishReason: 'stop',
        numPreemptions: 0,
        arrivalMs: 1.5,
        firstTokenMs: 2.5,
        finishMs: 3.25,
      },
      stats: { numSteps: 3, numOutputTokens: 2 },
    }),
    none({ tag: 'requestProgress', requestId: 'r-1', offset: 1, tokenIds: [9, 2] }),
    none({ tag: 'stopRequests', requestIds: ['r-1', 'r-3'] }),
    none({
      tag: 'requestRejected',
      requestId: 'r-2',
      message: 'prompt token id 9000 is outside the vocabulary',
    }),
    none({ tag: 'jobFailed', message: 'host host-b lost', lostHost: 'host-b' }),
  ];
}

/** Device 1's part of a D1T1P2 -> D1T2P1 switch of a 2-layer model (a few pieces of it). */
export function sampleReshardPlan(): DeviceReshardPlanData {
  const slice = (name: string, axis: 'rows' | 'columns', start: number, end: number) => ({
    name,
    axis,
    start,
    end,
  });
  return {
    device: 1,
    from: { tp: 1, tpRank: 0, pp: 2, ppStage: 1 },
    to: { tp: 2, tpRank: 1, pp: 1, ppStage: 0 },
    pieces: [
      {
        slice: slice('model.embed_tokens.weight', 'rows', 0, 64),
        source: { kind: 'peer', device: 0 },
        bytes: 2048,
        unit: 0,
      },
      {
        slice: slice('model.layers.0.self_attn.o_proj.weight', 'columns', 8, 16),
        source: { kind: 'host' },
        bytes: 256,
        unit: 1,
      },
      {
        slice: slice('model.layers.1.self_attn.o_proj.weight', 'columns', 8, 16),
        source: { kind: 'keep' },
        bytes: 256,
        unit: 2,
      },
    ],
    sends: [
      { to: 0, slice: slice('model.layers.1.mlp.down_proj.weight', 'columns', 0, 24), bytes: 768, unit: 2 },
    ],
    bytesKept: 256,
    bytesReceived: 2048,
    bytesSent: 768,
    bytesFromHost: 256,
    peakWeightBytes: 8192,
    seconds: 0.001,
  };
}

/** Odd-length tensors of every activation dtype: exercises the padding between tensors. */
export function oddSizeSamples(random: () => number): Sample[] {
  const samples: Sample[] = [];
  for (const n of [3, 4, 5]) {
    samples.push({
      message: {
        tag: 'stepDone',
        stepId: n,
        sampled: [
          { seqId: 1, tokenId: 2 },
          { seqId: 2, tokenId: 3 },
        ],
        hasLogits: true,
      },
      tensors: [randomTensor(random, 'f32', [n]), randomTensor(random, 'f32', [n])],
    });
  }
  for (const [i, dtype] of (['f16', 'bf16'] as const).entries()) {
    samples.push({
      message: {
        tag: 'allReduceChunk',
        opId: i,
        stepId: 0,
        round: 0,
        chunkIndex: 0,
        numChunks: 1,
        fromRank: 0,
      },
      tensors: [randomTensor(random, dtype, [5 + 2 * i])],
    });
  }
  return samples;
}
