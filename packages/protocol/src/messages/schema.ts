/**
 * What the validator knows about one message tag: its fields and the tensors that must
 * travel with it.
 */

import { type Check, int, type ObjectShape } from '../check.ts';
import type { DType } from '../tensor.ts';

/** Dtype and shape of one attached tensor (a frame descriptor or an outgoing Tensor). */
export interface TensorShapeInfo {
  dtype: DType;
  shape: readonly number[];
}

/**
 * Cross-field and tensor checks run after the field checks pass: returns a reason when the
 * attached tensors, or fields taken together, do not fit.
 */
export type MessageRule = (
  message: Record<string, unknown>,
  tensors: readonly TensorShapeInfo[],
) => string | undefined;

export interface MessageSchema {
  fields: ObjectShape;
  rule: MessageRule;
}

/** Header keys the codec owns; no message may use them as field names. */
export const RESERVED_FIELDS: ReadonlySet<string> = new Set(['v', 'tag', 'tensors']);

export const noTensors: MessageRule = (_message, tensors) =>
  tensors.length === 0 ? undefined : `expected no tensors, got ${tensors.length}`;

/** Exactly one tensor of one of `dtypes`, whose shape `shapeOf(message)` predicts (null = any rank/shape). */
export function oneTensor(
  dtypes: readonly DType[],
  shapeOf?: (message: Record<string, unknown>, shape: readonly number[]) => string | undefined,
): MessageRule {
  return (message, tensors) => {
    if (tensors.length !== 1) return `expected 1 tensor, got ${tensors.length}`;
    const t = tensors[0]!;
    if (!dtypes.includes(t.dtype)) return `tensor dtype ${t.dtype} not in ${dtypes.join('/')}`;
    return shapeOf?.(message, t.shape);
  };
}

export function sameShape(actual: readonly number[], expected: readonly number[]): string | undefined {
  if (actual.length === expected.length && actual.every((d, i) => d === expected[i])) return undefined;
  return `tensor shape [${actual}] != expected [${expected}]`;
}

export const stepId: Check = int(0, Number.MAX_SAFE_INTEGER);

export function schema(
  required: Record<string, Check>,
  rule: MessageRule = noTensors,
  optional?: Record<string, Check>,
): MessageSchema {
  for (const key of [...Object.keys(required), ...Object.keys(optional ?? {})]) {
    if (RESERVED_FIELDS.has(key)) throw new Error(`schema: field name ${key} is reserved`);
  }
  return { fields: { required, optional }, rule };
}
