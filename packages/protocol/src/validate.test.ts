import { describe, expect, it } from 'vitest';
import { rawFrame } from '../test/raw-frames.ts';
import { decodeFrame, encodeFrame } from './codec.ts';
import type { ProtocolErrorCode } from './messages/common.ts';
import type { Message } from './messages/index.ts';
import { INBOUND_TAGS } from './messages/index.ts';
import { SharedRegion } from './shared-region.ts';

function expectRejected(frame: Uint8Array, code: ProtocolErrorCode, pattern?: RegExp, options = {}): void {
  const result = decodeFrame(frame, options);
  expect(result.ok).toBe(false);
  if (!result.ok) {
    expect(result.error.code).toBe(code);
    if (pattern) expect(result.error.message).toMatch(pattern);
  }
}

const heartbeat = { v: 1, tag: 'heartbeat', seq: 1, sentAtMs: 5, tensors: [] };
const chunkHeader = {
  v: 1,
  tag: 'allReduceChunk',
  opId: 0,
  stepId: 0,
  round: 0,
  chunkIndex: 0,
  numChunks: 1,
  fromRank: 0,
};

describe('validate', () => {
  it('accepts a hand-built valid frame', () => {
    expect(decodeFrame(rawFrame(heartbeat)).ok).toBe(true);
  });

  it('rejects short, truncated and absurd frames', () => {
    expectRejected(new Uint8Array(0), 'truncated');
    expectRejected(new Uint8Array([1, 0]), 'truncated');
    const absurd = new Uint8Array(8);
    new DataView(absurd.buffer).setUint32(0, 0xffff_fff0, true);
    expectRejected(absurd, 'headerTooLarge');
    const frame = rawFrame(heartbeat);
    expectRejected(frame.subarray(0, frame.byteLength - 1), 'truncated');
    const withTensor = encodeFrame(
      { tag: 'activations', stepId: 0, microBatch: 0, fromStage: 0, numTokens: 2 },
      [{ dtype: 'f32', shape: [2, 4], data: new Float32Array(8) }],
    );
    expectRejected(withTensor.subarray(0, withTensor.byteLength - 4), 'truncated', /tensor bytes end/);
    const padded = new Uint8Array(withTensor.byteLength + 8);
    padded.set(withTensor);
    expectRejected(padded, 'badTensor', /trailing/);
  });

  it('rejects bad msgpack, non-map headers and other wire formats', () => {
    const garbage = new Uint8Array([3, 0, 0, 0, 0xc1, 0xc1, 0xc1]);
    expectRejected(garbage, 'badHeader');
    expectRejected(rawFrame([1, 2, 3]), 'badHeader', /not a map/);
    expectRejected(rawFrame({ ...heartbeat, v: 2 }), 'wireFormat');
    expectRejected(rawFrame({ ...heartbeat, tag: 7 }), 'badHeader');
  });

  it('rejects unknown tags and tags not accepted on this link', () => {
    expectRejected(rawFrame({ ...heartbeat, tag: 'launchMissiles' }), 'unknownTag');
    expectRejected(rawFrame({ ...heartbeat, tag: '__proto__' }), 'unknownTag');
    const step = encodeFrame({ tag: 'kvPutDone', requestId: 1 });
    expectRejected(step, 'unexpected', /not accepted/, { accept: INBOUND_TAGS.coordinatorToDevice });
    expect(decodeFrame(step, { accept: INBOUND_TAGS.kvStoreToDevice }).ok).toBe(true);
  });

  it('rejects wrong field types, ranges, missing and extra fields', () => {
    expectRejected(rawFrame({ ...heartbeat, seq: -1 }), 'badField', /heartbeat.seq/);
    expectRejected(rawFrame({ ...heartbeat, seq: 1.5 }), 'badField');
    expectRejected(rawFrame({ ...heartbeat, seq: '1' }), 'badField');
    expectRejected(rawFrame({ v: 1, tag: 'heartbeat', seq: 1, tensors: [] }), 'badField', /missing/);
    expectRejected(rawFrame({ ...heartbeat, extra: 1 }), 'badField', /unexpected field/);
    expectRejected(rawFrame({ ...heartbeat, tag: 'shutdown', mode: 'explode', seq: undefined }), 'badField');
    const step = {
      v: 1,
      tag: 'step',
      tensors: [],
      batch: {
        stepId: 1,
        addedSeqs: [],
        releasedSeqIds: [],
        seqs: [
          { seqId: 1, tokenIds: [1, -2], startPos: 0, blockTable: [], isSampled: false, outputIndex: 0 },
        ],
      },
    };
    expectRejected(rawFrame(step), 'badField', /seqs\[0\]\.tokenIds\[1\]/);
    const shard = {
      v: 1,
      tag: 'loadShard',
      tensors: [],
      modelDir: '/m',
      parallelism: 'D1T2P2',
      dpRank: 0,
      tpRank: 2,
      ppStage: 0,
      layers: { start: 0, end: 2 },
      numThreads: 1,
      deviceMemoryBytes: 1,
      blockSize: 16,
    };
    expectRejected(rawFrame(shard), 'badTensor', /outside D1T2P2/);
    expectRejected(rawFrame({ ...shard, tpRank: 0, parallelism: 'T2' }), 'badField');
    expectRejected(
      rawFrame({ ...shard, tpRank: 0, layers: { start: 3, end: 2 } }),
      'badField',
      /start 3 > end 2/,
    );
    expectRejected(rawFrame({ ...shard, tpRank: 0, kvDtype: 'fp8' }), 'badField', /loadShard\.kvDtype/);
    expectRejected(
      rawFrame({ ...shard, tpRank: 0, otherLayoutPosition: { tp: 2, tpRank: 2, pp: 2, ppStage: 0 } }),
      'badField',
      /otherLayoutPosition: tpRank 2 outside \[0, 2\)/,
    );
  });

  it('rejects tensor descriptors that do not add up', () => {
    const payload = new Uint8Array(16);
    const descriptor = { dtype: 'f32', shape: [4], byteLength: 16 };
    expect(decodeFrame(rawFrame({ ...chunkHeader, tensors: [descriptor] }, payload)).ok).toBe(true);
    expectRejected(
      rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, byteLength: 12 }] }, payload),
      'badTensor',
      /byteLength/,
    );
    expectRejected(
      rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, shape: [2, 2] }] }, payload),
      'badTensor',
      /rank 1/,
    );
    expectRejected(
      rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, shape: [-4] }] }, payload),
      'badTensor',
    );
    expectRejected(
      rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, dtype: 'f64' }] }, payload),
      'badTensor',
      /dtype/,
    );
    expectRejected(
      rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, dtype: 'i32' }] }, payload),
      'badTensor',
      /not in/,
    );
    expectRejected(rawFrame({ ...chunkHeader, tensors: [descriptor, descriptor] }, payload), 'truncated');
    expectRejected(rawFrame({ ...chunkHeader, tensors: [] }), 'badTensor', /expected 1 tensor/);
    expectRejected(rawFrame({ ...chunkHeader, tensors: {} }), 'badTensor');
    const huge = { dtype: 'f32', shape: [0x7fff_ffff, 0x7fff_ffff, 0x7fff_ffff], byteLength: 16 };
    expectRejected(rawFrame({ ...chunkHeader, tensors: [huge] }, payload), 'badTensor');
  });

  it('checks a KV slice tensor against its ranges', () => {
    const address = { ...kvAddress, layers: { start: 0, end: 2 } };
    const good = encodeFrame({ tag: 'kvPut', ...address }, [
      { dtype: 'f32', shape: [2, 2, 1, 3, 4], data: new Float32Array(48) },
    ]);
    expect(decodeFrame(good).ok).toBe(true);
    const bad = encodeFrame({ tag: 'kvPut', ...address }, [
      { dtype: 'f32', shape: [2, 2, 1, 4, 3], data: new Float32Array(48) },
    ]);
    expectRejected(bad, 'badTensor', /expected \[2,2,1,3,3\]/);
  });

  /** One layer x one KV head x 3 tokens of sequence 1. */
  const kvAddress = {
    requestId: 1,
    seqId: 1,
    layers: { start: 0, end: 1 },
    heads: { start: 0, end: 1 },
    tokens: { start: 0, end: 3 },
  };

  it('takes explicit host slot ids on kvGet and kvPut, checked as counts', () => {
    const address = kvAddress;
    const withSlots = decodeFrame(encodeFrame({ tag: 'kvGet', ...address, slotIds: [5, 0] }));
    expect(withSlots.ok && withSlots.message).toMatchObject({ tag: 'kvGet', slotIds: [5, 0] });
    expectRejected(encodeFrame({ tag: 'kvGet', ...address, slotIds: [] }), 'badField', /slotIds/);
    expectRejected(encodeFrame({ tag: 'kvGet', ...address, slotIds: [1, -2] }), 'badField', /slotIds\[1\]/);
  });

  it('takes the prefetch mark on kvGet and kvCopyIn only as a boolean', () => {
    const address = kvAddress;
    const messages: Array<Extract<Message, { tag: 'kvGet' | 'kvCopyIn' }>> = [
      { tag: 'kvGet', ...address },
      { tag: 'kvCopyIn', ...address, blockIds: [4] },
    ];
    for (const message of messages) {
      const marked = decodeFrame(encodeFrame({ ...message, isPrefetch: true }));
      expect(marked.ok && marked.message).toMatchObject({ tag: message.tag, isPrefetch: true });
      expectRejected(
        encodeFrame({ ...message, isPrefetch: 1 } as unknown as Message),
        'badField',
        /isPrefetch/,
      );
    }
  });

  it('resolves shared-region descriptors only inside a known region', () => {
    const region = SharedRegion.create(5, 1024);
    const descriptor = { dtype: 'f32', shape: [4], byteLength: 16, region: 5, byteOffset: 64 };
    const frame = rawFrame({ ...chunkHeader, tensors: [descriptor] });
    const ok = decodeFrame(frame, { regionById: (id) => (id === 5 ? region.buffer : undefined) });
    expect(ok.ok && ok.tensors[0]!.data.buffer).toBe(region.buffer);
    expectRejected(frame, 'badTensor', /unknown shared region/);
    const outside = rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, byteOffset: 1020 }] });
    expectRejected(outside, 'badTensor', /outside region/, { regionById: () => region.buffer });
    const misaligned = rawFrame({ ...chunkHeader, tensors: [{ ...descriptor, byteOffset: 2 }] });
    expectRejected(misaligned, 'badTensor', /aligned/, { regionById: () => region.buffer });
  });
});
