/**
 * Readers of one optional typed field of a request object (a number with its range rule, or a
 * boolean); a wrong value adds a problem naming the field instead of throwing.
 */
import { describeValue, type LineProblems } from './line-problems.ts';

/** Reads an optional number field; null counts as absent (OpenAI clients send explicit nulls). */
export function readNumber(
  object: Record<string, unknown>,
  name: string,
  rule: { isInteger: boolean; isValid: (value: number) => boolean; expected: string },
  problems: LineProblems,
): number | undefined {
  const value = object[name];
  if (value === undefined || value === null) return undefined;
  const isNumber = typeof value === 'number' && Number.isFinite(value);
  if (!isNumber || (rule.isInteger && !Number.isInteger(value)) || !rule.isValid(value as number)) {
    problems.add(`${name} must be ${rule.expected}, got ${describeValue(value)}`);
    return undefined;
  }
  return value as number;
}

export function readBoolean(
  object: Record<string, unknown>,
  name: string,
  problems: LineProblems,
): boolean | undefined {
  const value = object[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    problems.add(`${name} must be true or false, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}
