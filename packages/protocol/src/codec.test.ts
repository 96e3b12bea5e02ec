import { describe, expect, it } from 'vitest';
import { seededRandom } from '../test/random.ts';
import { oddSizeSamples, sampleMessages } from '../test/sample-messages.ts';
import { decodeFrame, encodeFrame, encodeFrameParts } from './codec.ts';
import { stepDoneMessage, stepResultOf } from './messages/coordinator-device.ts';
import { INBOUND_TAGS, MESSAGE_SCHEMAS } from './messages/index.ts';
import { type Tensor, tensorBytes } from './tensor.ts';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

export function expectSameTensors(actual: readonly Tensor[], expected: readonly Tensor[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((t, i) => {
    expect(t.dtype).toBe(expected[i]!.dtype);
    expect(t.shape).toEqual(expected[i]!.shape);
    expect(t.data.constructor).toBe(expected[i]!.data.constructor);
    expect(Buffer.from(tensorBytes(t)).equals(Buffer.from(tensorBytes(expected[i]!)))).toBe(true);
  });
}

describe('codec', () => {
  const random = seededRandom(1);
  const samples = [...sampleMessages(random), ...oddSizeSamples(random)];

  it('has a sample for every tag, and every link accepts only known tags', () => {
    expect(new Set(samples.map((s) => s.message.tag))).toEqual(new Set(MESSAGE_SCHEMAS.keys()));
    for (const tags of Object.values(INBOUND_TAGS))
      for (const tag of tags) expect(MESSAGE_SCHEMAS.has(tag)).toBe(true);
  });

  it.each(samples.map((s) => [s.message.tag, s] as const))('round-trips %s', (_tag, sample) => {
    const frame = encodeFrame(sample.message, sample.tensors);
    expect(frame.byteOffset).toBe(0);
    expect(frame.byteLength).toBe(frame.buffer.byteLength);
    const result = decodeFrame(frame);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.message).toEqual(sample.message);
    expectSameTensors(result.tensors, sample.tensors);
    // Views on the frame itself, 8-aligned: no copy of the payload.
    for (const t of result.tensors) {
      expect(t.data.buffer).toBe(frame.buffer);
      expect(t.data.byteOffset % 8).toBe(0);
    }
    // The parts form exactly the same bytes, and tensor parts are the caller's own memory.
    const parts = encodeFrameParts(sample.message, sample.tensors);
    expect(Buffer.from(concat(parts)).equals(Buffer.from(frame))).toBe(true);
    for (const t of sample.tensors) expect(parts.some((p) => p.buffer === t.data.buffer)).toBe(true);
  });

  it('copies once when the frame sits at a misaligned address, values intact', () => {
    const sample = samples.find((s) => s.message.tag === 'activations')!;
    const frame = encodeFrame(sample.message, sample.tensors);
    const shifted = new Uint8Array(frame.byteLength + 3).subarray(3);
    shifted.set(frame);
    const result = decodeFrame(shifted);
    if (!result.ok) throw new Error(result.error.message);
    expectSameTensors(result.tensors, sample.tensors);
  });

  it('omits undefined optional fields', () => {
    const result = decodeFrame(
      encodeFrame({ tag: 'error', code: 'x', message: 'y', requestStepId: undefined }),
    );
    expect(result.ok && Object.keys(result.message)).toEqual(['tag', 'code', 'message']);
  });

  it('keeps tensor bytes bit-exact for random payloads of every size class', () => {
    for (const n of [0, 1, 7, 1000, 65_537]) {
      const data = Float32Array.from({ length: n }, () => random() * 2e6 - 1e6);
      const frame = encodeFrame(
        { tag: 'allReduceChunk', opId: 0, stepId: 0, round: 0, chunkIndex: 0, numChunks: 1, fromRank: 0 },
        [{ dtype: 'f32', shape: [n], data }],
      );
      const result = decodeFrame(frame);
      if (!result.ok) throw new Error(result.error.message);
      expect(Array.from(result.tensors[0]!.data)).toEqual(Array.from(data));
    }
  });

  it('refuses to encode a tensor whose data does not match its dtype or shape', () => {
    const message = {
      tag: 'allReduceChunk',
      opId: 0,
      stepId: 0,
      round: 0,
      chunkIndex: 0,
      numChunks: 1,
      fromRank: 0,
    } as const;
    expect(() => encodeFrame(message, [{ dtype: 'f32', shape: [3], data: new Float32Array(4) }])).toThrow(
      TypeError,
    );
    expect(() => encodeFrame(message, [{ dtype: 'bf16', shape: [4], data: new Float32Array(4) }])).toThrow(
      TypeError,
    );
  });

  it('carries penalties, output history and log probabilities, and refuses them out of range', () => {
    const sampling = {
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 1,
      presencePenalty: -2,
      frequencyPenalty: 1.5,
      numLogprobs: 20,
    };
    const batch = {
      stepId: 1,
      addedSeqs: [{ seqId: 2, sampling, outputHistory: { tokenIds: [4, 4, 9], nextPosition: 8 } }],
      releasedSeqIds: [],
      seqs: [{ seqId: 2, tokenIds: [1], startPos: 0, blockTable: [0], isSampled: true, outputIndex: 3 }],
    };
    const step = decodeFrame(encodeFrame({ tag: 'step', batch }));
    expect(step.ok && step.message.tag === 'step' && step.message.batch).toEqual(batch);
    const tooBig = { ...batch, addedSeqs: [{ seqId: 2, sampling: { ...sampling, presencePenalty: 2.5 } }] };
    expect(decodeFrame(encodeFrame({ tag: 'step', batch: tooBig })).ok).toBe(false);
    const tooMany = { ...batch, addedSeqs: [{ seqId: 2, sampling: { ...sampling, numLogprobs: 21 } }] };
    expect(decodeFrame(encodeFrame({ tag: 'step', batch: tooMany })).ok).toBe(false);

    const logprobs = {
      logprob: -0.25,
      top: [
        { tokenId: 3, logprob: -0.25 },
        { tokenId: 1, logprob: Number.NEGATIVE_INFINITY },
      ],
    };
    const result = { stepId: 1, sampled: [{ seqId: 2, tokenId: 3, logprobs }] };
    const done = stepDoneMessage(result);
    const decoded = decodeFrame(encodeFrame(done.message, done.tensors));
    expect(
      decoded.ok && decoded.message.tag === 'stepDone' && stepResultOf(decoded.message, decoded.tensors),
    ).toEqual(result);
    const positive = stepDoneMessage({
      stepId: 1,
      sampled: [{ seqId: 2, tokenId: 3, logprobs: { logprob: 0.5, top: [] } }],
    });
    expect(decodeFrame(encodeFrame(positive.message, positive.tensors)).ok).toBe(false);
  });

  it('carries a StepResult with logits as out-of-band tensors', () => {
    const logits = [Float32Array.from([1, 2, 3]), Float32Array.from([-1, 0.5, 9])];
    const result = {
      stepId: 4,
      sampled: [
        { seqId: 1, tokenId: 2 },
        { seqId: 3, tokenId: 0 },
      ],
      logits,
    };
    const { message, tensors } = stepDoneMessage(result);
    const decoded = decodeFrame(encodeFrame(message, tensors));
    if (!decoded.ok || decoded.message.tag !== 'stepDone') throw new Error('decode failed');
    expect(stepResultOf(decoded.message, decoded.tensors)).toEqual(result);
    const noLogits = stepDoneMessage({ stepId: 5, sampled: [] });
    const plain = decodeFrame(encodeFrame(noLogits.message, noLogits.tensors));
    expect(
      plain.ok && plain.message.tag === 'stepDone' && stepResultOf(plain.message, plain.tensors),
    ).toEqual({ stepId: 5, sampled: [] });
  });
});
