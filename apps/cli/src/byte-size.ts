/**
 * Byte sizes on the command line: `1GiB`, `512MiB`, `64KiB`, `4096B` or a bare byte count.
 * Units are binary (KiB = 1024 B); decimal units (GB, MB) are refused rather than guessed,
 * because a 7% difference in KV cache size silently changes how many sequences fit.
 */

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

export class ByteSizeError extends Error {
  override name = 'ByteSizeError';
}

const BYTE_SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/** Parses a size such as `1GiB` or `1.5 MiB` into a whole number of bytes (rounded down). */
export function parseByteSize(text: string): number {
  const trimmed = text.trim();
  const match = BYTE_SIZE_PATTERN.exec(trimmed);
  if (match === null) {
    throw new ByteSizeError(
      `invalid size '${text}': expected a number with an optional unit B, KiB, MiB, GiB or TiB (e.g. 1GiB)`,
    );
  }
  const unit = match[2].toLowerCase();
  const unitBytes = unit === '' ? 1 : UNIT_BYTES[unit];
  if (unitBytes === undefined) {
    throw new ByteSizeError(
      `invalid size '${text}': unknown unit '${match[2]}' (use B, KiB, MiB, GiB or TiB)`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * unitBytes);
  if (!Number.isSafeInteger(bytes)) {
    throw new ByteSizeError(`invalid size '${text}': too large`);
  }
  if (bytes <= 0) {
    throw new ByteSizeError(`invalid size '${text}': must be more than 0 bytes`);
  }
  return bytes;
}

/** Human form for reports: the largest binary unit that keeps the number >= 1, two decimals. */
export function formatByteSize(bytes: number): string {
  const units: Array<[string, number]> = [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ];
  for (const [name, size] of units) {
    if (bytes >= size) return `${(bytes / size).toFixed(2)} ${name}`;
  }
  return `${bytes} B`;
}
