/**
 * Hand-written field checkers for incoming messages. A checker returns undefined when the
 * value is acceptable, or a short reason naming the offending path. Checkers never throw and
 * never trust prototypes: a decoded header is attacker-controlled data.
 */

export type Check = (value: unknown, path: string) => string | undefined;

/** Largest element count we accept in any array field (token lists, block tables...). */
export const MAX_ARRAY_LENGTH = 1 << 20;
export const MAX_STRING_LENGTH = 4096;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function int(min: number, max: number): Check {
  return (value, path) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? undefined
      : `${path}: expected an integer in [${min}, ${max}]`;
}

/** Non-negative safe integer (ids, counts, byte sizes). */
export const count: Check = int(0, Number.MAX_SAFE_INTEGER);
export const u32: Check = int(0, 0xffff_ffff);

export function finite(min = -Infinity, max = Infinity): Check {
  return (value, path) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
      ? undefined
      : `${path}: expected a finite number in [${min}, ${max}]`;
}

export const bool: Check = (value, path) =>
  typeof value === 'boolean' ? undefined : `${path}: expected a boolean`;

export function str(maxLength = MAX_STRING_LENGTH, pattern?: RegExp): Check {
  return (value, path) => {
    if (typeof value !== 'string' || value.length > maxLength) {
      return `${path}: expected a string of at most ${maxLength} characters`;
    }
    if (pattern && !pattern.test(value)) return `${path}: ${JSON.stringify(value)} does not match ${pattern}`;
    return undefined;
  };
}

export function oneOf(...allowed: readonly (string | number | boolean)[]): Check {
  return (value, path) =>
    allowed.includes(value as string) ? undefined : `${path}: expected one of ${allowed.join(', ')}`;
}

export function arrayOf(item: Check, maxLength = MAX_ARRAY_LENGTH, minLength = 0): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return `${path}: expected an array`;
    if (value.length < minLength || value.length > maxLength) {
      return `${path}: expected ${minLength}..${maxLength} items, got ${value.length}`;
    }
    for (let i = 0; i < value.length; i++) {
      const error = item(value[i], `${path}[${i}]`);
      if (error) return error;
    }
    return undefined;
  };
}

export interface ObjectShape {
  required: Record<string, Check>;
  optional?: Record<string, Check>;
}

/** Checks an object's fields; unknown keys are rejected (peers agree on a version first). */
export function checkFields(
  value: unknown,
  path: string,
  shape: ObjectShape,
  ignore?: ReadonlySet<string>,
): string | undefined {
  if (!isPlainObject(value)) return `${path}: expected an object`;
  for (const key of Object.keys(shape.required)) {
    if (!Object.hasOwn(value, key)) return `${path}.${key}: missing`;
    const error = shape.required[key]!(value[key], `${path}.${key}`);
    if (error) return error;
  }
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(shape.required, key) || ignore?.has(key)) continue;
    const check = shape.optional && Object.hasOwn(shape.optional, key) ? shape.optional[key] : undefined;
    if (!check) return `${path}.${key}: unexpected field`;
    // The encoder omits undefined fields; an explicit undefined (msgpackr's ext) means absent too.
    if (value[key] === undefined) continue;
    const error = check(value[key], `${path}.${key}`);
    if (error) return error;
  }
  return undefined;
}

export function object(required: Record<string, Check>, optional?: Record<string, Check>): Check {
  return (value, path) => checkFields(value, path, { required, optional });
}

/** Half-open range {start, end} of non-negative integers with start <= end. */
export const range: Check = (value, path) => {
  const error = checkFields(value, path, { required: { start: count, end: count } });
  if (error) return error;
  const r = value as { start: number; end: number };
  return r.start <= r.end ? undefined : `${path}: start ${r.start} > end ${r.end}`;
};
