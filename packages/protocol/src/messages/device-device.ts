/**
 * gpu-actor <-> gpu-actor messages: tensor-parallel all-reduce chunks, pipeline-parallel
 * activations, re-shard weight pieces and their receipts. Both directions use the same union.
 */

import { count, int } from '../check.ts';
import type { DType } from '../tensor.ts';
import { elementCount } from '../tensor.ts';
import type { Heartbeat, Hello, ProtocolError, Refused, Welcome } from './common.ts';
import { sliceAxis, tensorSliceName } from './reshard-plan-data.ts';
import { type MessageSchema, noTensors, oneTensor, schema, stepId } from './schema.ts';

/** Dtypes activations and partial sums may travel in. */
export const ACTIVATION_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

/**
 * One chunk of a ring all-reduce (reduce-scatter or all-gather phase). Tensor: the chunk's
 * elements, rank 1, f32/bf16/f16.
 */
export interface AllReduceChunk {
  tag: 'allReduceChunk';
  /** Id of the collective, unique within the step (e.g. layer * 2 + {attention, mlp}). */
  opId: number;
  /** Engine step the collective belongs to. */
  stepId: number;
  /** Ring phase round, 0-based; rounds [0, tp-1) reduce-scatter, the rest all-gather. */
  round: number;
  /** Which chunk of the flattened tensor this is, in [0, numChunks). */
  chunkIndex: number;
  /** Chunks the tensor is split into (the tensor-parallel degree for a ring). */
  numChunks: number;
  /** Sender's tensor-parallel rank. */
  fromRank: number;
}

/**
 * Hidden states handed from pipeline stage s to s+1 for one micro-batch. Tensor:
 * [numTokens, hidden], f32/bf16/f16.
 */
export interface Activations {
  tag: 'activations';
  /** Engine step the micro-batch belongs to. */
  stepId: number;
  /** Micro-batch index inside the step. */
  microBatch: number;
  /** Sender's pipeline stage. */
  fromStage: number;
  /** Rows of the attached tensor: tokens in the micro-batch. */
  numTokens: number;
}

/**
 * One weight piece sent peer-to-peer during a re-shard (a PieceSend of the sender's plan, a
 * 'peer' ReshardPiece of the receiver's). Tensor: the piece's raw checkpoint bytes, dtype u8,
 * row-major [rows][cols] of the piece (a column piece is the column band of every row), shape
 * [byteLength] or [rows, rowBytes]. Between threads of one process the tensor is usually a
 * descriptor into the sender's shared weight memory, which the receiver reads in place: the
 * sender keeps those bytes until the receiver answers with weightSliceTaken.
 */
export interface WeightSlice {
  tag: 'weightSlice';
  /** Reshard.reshardId of the switch the piece belongs to. */
  reshardId: number;
  /** Checkpoint tensor name. */
  name: string;
  /** 'rows': rows [start, end) (elements of a 1-D tensor); 'columns': columns [start, end). */
  axis: 'rows' | 'columns';
  start: number;
  end: number;
}

/**
 * The receiver of a weightSlice has copied it into its new shard: the sender may reuse the bytes
 * (free the slice they lie in). Sent for every piece, whichever way it travelled; the same fields
 * as the piece's weightSlice. No tensor.
 */
export interface WeightSliceTaken {
  tag: 'weightSliceTaken';
  reshardId: number;
  name: string;
  axis: 'rows' | 'columns';
  start: number;
  end: number;
}

export type DeviceToDevice =
  | Hello
  | Welcome
  | Refused
  | AllReduceChunk
  | Activations
  | WeightSlice
  | WeightSliceTaken
  | Heartbeat
  | ProtocolError;

const chunkRule = oneTensor(ACTIVATION_DTYPES, (message, shape) => {
  const m = message as unknown as AllReduceChunk;
  if (m.chunkIndex >= m.numChunks) return `chunkIndex ${m.chunkIndex} >= numChunks ${m.numChunks}`;
  return shape.length === 1 ? undefined : `all-reduce chunk must be rank 1, got [${shape}]`;
});

const activationsRule = oneTensor(ACTIVATION_DTYPES, (message, shape) => {
  const m = message as unknown as Activations;
  return shape.length === 2 && shape[0] === m.numTokens
    ? undefined
    : `activations tensor [${shape}] is not [numTokens=${m.numTokens}, hidden]`;
});

const weightSliceRule = oneTensor(['u8'], (message, shape) => {
  const m = message as unknown as WeightSlice;
  if (m.start >= m.end) return `empty slice [${m.start}, ${m.end})`;
  if (shape.length !== 1 && shape.length !== 2) return `weight piece must be rank 1 or 2, got [${shape}]`;
  return elementCount(shape) > 0 ? undefined : 'weight piece tensor is empty';
});

const sliceFields = { reshardId: count, name: tensorSliceName, axis: sliceAxis, start: count, end: count };

export const deviceToDeviceSchemas: Record<
  AllReduceChunk['tag'] | Activations['tag'] | WeightSlice['tag'] | WeightSliceTaken['tag'],
  MessageSchema
> = {
  allReduceChunk: schema(
    { opId: count, stepId, round: count, chunkIndex: count, numChunks: int(1, 1 << 16), fromRank: count },
    chunkRule,
  ),
  activations: schema({ stepId, microBatch: count, fromStage: count, numTokens: count }, activationsRule),
  weightSlice: schema(sliceFields, weightSliceRule),
  weightSliceTaken: schema(sliceFields, (message, tensors) => {
    const m = message as unknown as WeightSliceTaken;
    if (m.start >= m.end) return `empty slice [${m.start}, ${m.end})`;
    return noTensors(message, tensors);
  }),
};
