/**
 * The OpenAI completions fields that Seesaw does not act on, so that a real OpenAI batch file
 * is accepted line for line. Each field is one of:
 * - informational (`user`, `metadata`, `store`, `service_tier`): accepted and ignored, as they
 *   change nothing in what is generated;
 * - a feature at its no-op value (`n: 1`, `stream: false`, `echo: false`, penalties 0, ...):
 *   accepted, since the request then asks for exactly what the engine does;
 * - the same feature at any other value: a clear error naming the field and what is supported,
 *   never a silently different result.
 * Fields outside this table and the supported ones stay "unknown field" errors.
 */
import type { LineProblems } from './line-problems.ts';

/** The value as the user wrote it, cut short: a peer-chosen string must not flood the record. */
function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

interface OpenAiField {
  /** True when the value asks for nothing beyond what the engine does anyway. */
  isNoOp(value: unknown): boolean;
  /** Said when it is not: what this engine can take instead. */
  unsupported: string;
}

const isAbsent = (value: unknown) => value === undefined || value === null;
const isEmptyObject = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
const isInformational: OpenAiField = { isNoOp: () => true, unsupported: '' };

export const OPENAI_NO_OP_FIELDS: Readonly<Record<string, OpenAiField>> = {
  user: isInformational,
  metadata: isInformational,
  store: isInformational,
  service_tier: isInformational,
  best_of: { isNoOp: (v) => isAbsent(v) || v === 1, unsupported: 'only best_of: 1' },
  stream: {
    isNoOp: (v) => isAbsent(v) || v === false,
    unsupported: 'only stream: false in a batch line (results are written as records)',
  },
  stream_options: {
    isNoOp: isAbsent,
    unsupported: 'stream_options only with streaming, which batch lines do not do',
  },
  logit_bias: {
    isNoOp: (v) => isAbsent(v) || isEmptyObject(v),
    unsupported: 'logit_bias is not supported (null or {})',
  },
  suffix: { isNoOp: (v) => isAbsent(v) || v === '', unsupported: 'suffix is not supported (null or "")' },
};

/** Adds a problem for each OpenAI field whose value asks for something this engine does not do. */
export function checkOpenAiNoOpFields(object: Record<string, unknown>, problems: LineProblems): void {
  for (const [name, field] of Object.entries(OPENAI_NO_OP_FIELDS)) {
    if (!(name in object) || field.isNoOp(object[name])) continue;
    problems.add(`${name}: ${shortJson(object[name])} is not supported: ${field.unsupported}`);
  }
}
