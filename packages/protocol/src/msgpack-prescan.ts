/**
 * A cheap walk over msgpack bytes before they are unpacked: msgpackr pre-allocates arrays of the
 * length an array16/array32 prefix claims, so a 40-byte header claiming 16 million elements
 * costs a large allocation and hundreds of milliseconds. Every element takes at least one byte,
 * so no container may claim more elements than bytes remain; this walk rejects one that does
 * (and any string/binary/extension running past the end) in O(bytes), allocating nothing.
 */

/** Lead byte -> payload bytes after it, for the fixed-size types. */
const FIXED = new Map<number, number>([
  [0xc0, 0], // nil
  [0xc1, 0], // never used by the format; msgpackr reads it as a value of its own
  [0xc2, 0], // false
  [0xc3, 0], // true
  [0xca, 4], // float32
  [0xcb, 8], // float64
  [0xcc, 1], // uint8..uint64
  [0xcd, 2],
  [0xce, 4],
  [0xcf, 8],
  [0xd0, 1], // int8..int64
  [0xd1, 2],
  [0xd2, 4],
  [0xd3, 8],
  [0xd4, 2], // fixext 1..16: a type byte, then the data
  [0xd5, 3],
  [0xd6, 5],
  [0xd7, 9],
  [0xd8, 17],
]);

/** Lead byte -> bytes of its big-endian length field (bin, ext, str, array, map). */
const LENGTH_BYTES = new Map<number, number>([
  [0xc4, 1], // bin8/16/32
  [0xc5, 2],
  [0xc6, 4],
  [0xc7, 1], // ext8/16/32: the length, a type byte, then the data
  [0xc8, 2],
  [0xc9, 4],
  [0xd9, 1], // str8/16/32
  [0xda, 2],
  [0xdb, 4],
  [0xdc, 2], // array16/32
  [0xdd, 4],
  [0xde, 2], // map16/32
  [0xdf, 4],
]);

function readLength(bytes: Uint8Array, at: number, size: number): number {
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + bytes[at + i]!;
  return value;
}

/**
 * Undefined when `bytes` could be one msgpack value whose claims fit in it, else the reason.
 * Does not check that exactly one value fills the bytes: the unpacker still does that.
 */
export function msgpackClaimsFit(bytes: Uint8Array): string | undefined {
  let at = 0;
  // Values still to read: the top-level one plus every element containers announced.
  let pending = 1;
  while (pending > 0) {
    if (at >= bytes.length) return 'ends before all announced values';
    const lead = bytes[at++]!;
    pending--;
    let count = 0;
    let skip = 0;
    if (lead <= 0x7f || lead >= 0xe0)
      skip = 0; // fixints
    else if (lead <= 0x8f)
      count = 2 * (lead & 0x0f); // fixmap
    else if (lead <= 0x9f)
      count = lead & 0x0f; // fixarray
    else if (lead <= 0xbf)
      skip = lead & 0x1f; // fixstr
    else if (FIXED.has(lead)) skip = FIXED.get(lead)!;
    else if (LENGTH_BYTES.has(lead)) {
      const size = LENGTH_BYTES.get(lead)!;
      if (at + size > bytes.length) return 'length field runs past the end';
      const length = readLength(bytes, at, size);
      at += size;
      if (lead >= 0xdc && lead <= 0xdd) count = length;
      else if (lead >= 0xde) count = 2 * length;
      else skip = length + (lead >= 0xc7 && lead <= 0xc9 ? 1 : 0);
    } else return `byte 0x${lead.toString(16)} is not msgpack`;
    if (skip > bytes.length - at) return `a value of ${skip} bytes runs past the end`;
    at += skip;
    pending += count;
    if (pending > bytes.length - at) {
      return `announces ${pending} more values but only ${bytes.length - at} bytes remain`;
    }
  }
  return undefined;
}
