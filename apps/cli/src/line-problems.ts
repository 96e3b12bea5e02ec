/**
 * How a request line's problems are collected and worded: every problem of a line is kept, so
 * its one error record names them all; values are described short (a peer chose them).
 */

/** Short description of a JSON value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** Collects every problem of one line, so the error record names them all at once. */
export class LineProblems {
  readonly messages: string[] = [];
  add(message: string): void {
    this.messages.push(message);
  }
}
