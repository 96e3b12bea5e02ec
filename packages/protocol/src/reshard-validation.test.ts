import { describe, expect, it } from 'vitest';
import { rawFrame } from '../test/raw-frames.ts';
import { sampleReshardPlan } from '../test/sample-messages.ts';
import { decodeFrame, encodeFrame } from './codec.ts';
import { INBOUND_TAGS, type Message } from './messages/index.ts';
import type { DeviceReshardPlanData } from './messages/reshard-plan-data.ts';
import type { Tensor } from './tensor.ts';

// The re-shard messages: reshard (with a structurally validated plan), reshardDone, weightSlice,
// weightSliceTaken, and the weight-digest fields of loadShard / ready.

function expectRejected(frame: Uint8Array, pattern: RegExp): void {
  const result = decodeFrame(frame);
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.error.message).toMatch(pattern);
}

const reshard = { v: 1, tag: 'reshard', tensors: [], reshardId: 3, layout: 1 };
const done = {
  v: 1,
  tag: 'reshardDone',
  tensors: [],
  reshardId: 3,
  numKvBlocks: 10,
  weightBytes: 100,
  kvCacheBytes: 200,
  bytesKept: 1,
  bytesReceived: 2,
  bytesSent: 3,
  bytesFromHost: 4,
  peakWeightBytes: 150,
  ms: 1.5,
};
const digest = '0123456789abcdef'.repeat(4);

/** The sample plan with `edit` applied to a deep copy. */
function editedPlan(edit: (plan: DeviceReshardPlanData) => void): DeviceReshardPlanData {
  const plan = structuredClone(sampleReshardPlan());
  edit(plan);
  return plan;
}

describe('reshard message', () => {
  it('round-trips a plan and is accepted only on the coordinator -> device link', () => {
    const message = { tag: 'reshard', reshardId: 3, layout: 1, plan: sampleReshardPlan() } as const;
    const frame = encodeFrame(message);
    const decoded = decodeFrame(frame, { accept: INBOUND_TAGS.coordinatorToDevice });
    expect(decoded.ok && decoded.message).toEqual(message);
    expect(decodeFrame(frame, { accept: INBOUND_TAGS.deviceToCoordinator }).ok).toBe(false);
    expect(
      decodeFrame(rawFrame({ ...reshard, plan: sampleReshardPlan(), isWeightDigestReturned: true })).ok,
    ).toBe(true);
  });

  it('rejects malformed plans with a reason naming the field', () => {
    const cases: Array<[DeviceReshardPlanData | Record<string, unknown>, RegExp]> = [
      [editedPlan((p) => (p.pieces[0]!.slice.axis = 'diagonal' as 'rows')), /pieces\[0\]\.slice\.axis/],
      [editedPlan((p) => (p.pieces[1]!.slice.start = 16)), /pieces\[1\]\.slice: empty slice/],
      [editedPlan((p) => (p.pieces[1]!.slice.name = 'a b')), /pieces\[1\]\.slice\.name/],
      [editedPlan((p) => (p.pieces[0]!.source = { kind: 'cloud' } as never)), /pieces\[0\]\.source\.kind/],
      [editedPlan((p) => (p.pieces[0]!.source = { kind: 'peer' } as never)), /source\.device: missing/],
      [
        editedPlan((p) => (p.pieces[2]!.source = { kind: 'keep', device: 0 } as never)),
        /source\.device: unexpected/,
      ],
      [editedPlan((p) => (p.pieces[0]!.source = { kind: 'peer', device: 1 })), /not another device/],
      [editedPlan((p) => (p.pieces[0]!.source = { kind: 'peer', device: 2 })), /not another device/],
      [editedPlan((p) => (p.sends[0]!.to = 1)), /sends\[0\]\.to: 1 is not another device/],
      [editedPlan((p) => (p.pieces[0]!.unit = 5)), /pieces: not sorted by unit/],
      [editedPlan((p) => (p.bytesReceived = 7)), /bytesReceived: 7 but its pieces sum to 2048/],
      [editedPlan((p) => (p.bytesSent = 0)), /bytesSent/],
      [
        editedPlan((p) => (p.to = { tp: 4, tpRank: 1, pp: 1, ppStage: 0 })),
        /from has 2 devices but to has 4/,
      ],
      [editedPlan((p) => (p.from.ppStage = 2)), /from: ppStage 2 outside/],
      [editedPlan((p) => (p.device = 2)), /device: 2 outside/],
      [editedPlan((p) => (p.seconds = -1)), /seconds/],
      [editedPlan((p) => (p.pieces = {} as never)), /pieces: expected an array/],
      [{ ...sampleReshardPlan(), extra: 1 }, /plan\.extra: unexpected field/],
    ];
    for (const [plan, pattern] of cases) expectRejected(rawFrame({ ...reshard, plan }), pattern);
  });

  it('rejects a bad layout, a missing plan or a tensor', () => {
    const plan = sampleReshardPlan();
    expectRejected(rawFrame({ ...reshard, plan, layout: 2 }), /reshard\.layout/);
    expectRejected(rawFrame({ ...reshard }), /plan: missing/);
    expectRejected(rawFrame({ ...reshard, plan, isWeightDigestReturned: 'yes' }), /isWeightDigestReturned/);
    const withTensor = encodeFrame({ tag: 'reshard', reshardId: 1, layout: 0, plan }, [
      { dtype: 'u8', shape: [1], data: new Uint8Array(1) },
    ]);
    expectRejected(withTensor, /expected no tensors/);
  });
});

describe('reshardDone and weight digests', () => {
  it('accepts reshardDone with and without a digest, only on the device -> coordinator link', () => {
    expect(decodeFrame(rawFrame(done), { accept: INBOUND_TAGS.deviceToCoordinator }).ok).toBe(true);
    expect(decodeFrame(rawFrame({ ...done, weightDigest: digest })).ok).toBe(true);
    expect(decodeFrame(rawFrame(done), { accept: INBOUND_TAGS.coordinatorToDevice }).ok).toBe(false);
  });

  it('rejects missing counts, negative or fractional bytes and malformed digests', () => {
    const { peakWeightBytes: _, ...withoutPeak } = done;
    expectRejected(rawFrame(withoutPeak), /peakWeightBytes: missing/);
    expectRejected(rawFrame({ ...done, bytesSent: -1 }), /bytesSent/);
    expectRejected(rawFrame({ ...done, bytesKept: 0.5 }), /bytesKept/);
    expectRejected(rawFrame({ ...done, ms: Number.NaN }), /reshardDone\.ms/);
    expectRejected(rawFrame({ ...done, weightDigest: digest.toUpperCase() }), /weightDigest/);
    expectRejected(rawFrame({ ...done, weightDigest: digest.slice(1) }), /weightDigest/);
  });

  it('carries optional digests on ready and the digest request on loadShard', () => {
    const ready = { v: 1, tag: 'ready', tensors: [], numKvBlocks: 1, weightBytes: 2, kvCacheBytes: 3 };
    expect(decodeFrame(rawFrame({ ...ready, weightDigest: digest })).ok).toBe(true);
    expectRejected(rawFrame({ ...ready, weightDigest: 'sha256' }), /ready\.weightDigest/);
    // The other layout's cache size, announced at load: a count or nothing.
    expect(decodeFrame(rawFrame({ ...ready, otherLayoutNumKvBlocks: 40 })).ok).toBe(true);
    expectRejected(rawFrame({ ...ready, otherLayoutNumKvBlocks: -1 }), /ready\.otherLayoutNumKvBlocks/);
    expectRejected(rawFrame({ ...ready, otherLayoutNumKvBlocks: 2.5 }), /ready\.otherLayoutNumKvBlocks/);
    const loadShard = {
      v: 1,
      tag: 'loadShard',
      tensors: [],
      modelDir: '/m',
      parallelism: 'D1T2P1',
      dpRank: 0,
      tpRank: 1,
      ppStage: 0,
      layers: { start: 0, end: 4 },
      numThreads: 1,
      deviceMemoryBytes: 1 << 30,
      blockSize: 16,
    };
    expect(decodeFrame(rawFrame({ ...loadShard, isWeightDigestReturned: true })).ok).toBe(true);
    expectRejected(
      rawFrame({ ...loadShard, isWeightDigestReturned: 1 }),
      /loadShard\.isWeightDigestReturned/,
    );
  });
});

/** The piece both device <-> device weight messages name. */
const PIECE = {
  reshardId: 3,
  name: 'model.layers.0.mlp.down_proj.weight',
  axis: 'columns',
  start: 0,
  end: 24,
} as const;

describe('weightSlice message', () => {
  const message = { tag: 'weightSlice', ...PIECE } as const;
  const piece = (shape: number[], dtype: Tensor['dtype'] = 'u8'): Tensor => {
    const length = shape.reduce((a, b) => a * b, 1);
    const data = dtype === 'u8' ? Uint8Array.from({ length }, (_, i) => i * 7) : new Uint16Array(length);
    return { dtype, shape, data };
  };

  it('round-trips the raw bytes, on the device <-> device link only', () => {
    const tensor = piece([8, 48]);
    const frame = encodeFrame(message, [tensor]);
    const decoded = decodeFrame(frame, { accept: INBOUND_TAGS.deviceToDevice });
    if (!decoded.ok) throw new Error(decoded.error.message);
    expect(decoded.message).toEqual(message);
    expect(decoded.tensors[0]!.shape).toEqual([8, 48]);
    expect([...(decoded.tensors[0]!.data as Uint8Array)]).toEqual([...(tensor.data as Uint8Array)]);
    expect(decodeFrame(frame, { accept: INBOUND_TAGS.coordinatorToDevice }).ok).toBe(false);
    expect(decodeFrame(encodeFrame(message, [piece([384])])).ok).toBe(true);
  });

  it('rejects a missing, extra, non-u8, empty or high-rank tensor and bad fields', () => {
    const encode = (fields: Partial<Record<keyof typeof message, unknown>>, tensors: Tensor[]) =>
      encodeFrame({ ...message, ...fields } as unknown as Message, tensors);
    expectRejected(encode({}, []), /expected 1 tensor, got 0/);
    expectRejected(encode({}, [piece([4]), piece([4])]), /expected 1 tensor, got 2/);
    expectRejected(encode({}, [piece([4, 4], 'bf16')]), /dtype bf16 not in u8/);
    expectRejected(encode({}, [piece([0])]), /empty/);
    expectRejected(encode({}, [piece([2, 2, 2])]), /rank 1 or 2/);
    expectRejected(encode({ start: 24 }, [piece([4])]), /empty slice/);
    expectRejected(encode({ axis: 'depth' }, [piece([4])]), /weightSlice\.axis/);
    expectRejected(encode({ name: '' }, [piece([4])]), /weightSlice\.name/);
    expectRejected(encode({ reshardId: -1 }, [piece([4])]), /weightSlice\.reshardId/);
  });
});

describe('weightSliceTaken message', () => {
  const taken = { tag: 'weightSliceTaken', ...PIECE } as const;

  it('round-trips on the device <-> device link only, without a tensor', () => {
    const decoded = decodeFrame(encodeFrame(taken), { accept: INBOUND_TAGS.deviceToDevice });
    if (!decoded.ok) throw new Error(decoded.error.message);
    expect(decoded.message).toEqual(taken);
    expect(decoded.tensors).toEqual([]);
    expect(decodeFrame(encodeFrame(taken), { accept: INBOUND_TAGS.coordinatorToDevice }).ok).toBe(false);
  });

  it('rejects a tensor, an empty slice and bad fields', () => {
    const encode = (fields: Partial<Record<keyof typeof taken, unknown>>, tensors: Tensor[] = []) =>
      encodeFrame({ ...taken, ...fields } as unknown as Message, tensors);
    expectRejected(encode({}, [{ dtype: 'u8', shape: [4], data: new Uint8Array(4) }]), /expected no tensors/);
    expectRejected(encode({ start: 24 }), /empty slice/);
    expectRejected(encode({ axis: 'depth' }), /weightSliceTaken\.axis/);
    expectRejected(encode({ reshardId: -1 }), /weightSliceTaken\.reshardId/);
  });
});
