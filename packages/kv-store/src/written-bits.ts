/**
 * The host store's written-bitmap helpers: one bit per (slot, layer, K/V, head, token), set by a
 * put and tested by a get, so reading what was never written is an error and not stale bytes.
 */

/** Sets or clears bits [first, first + count); whole bytes in one store each. */
function fillBits(bits: Uint8Array, first: number, count: number, isSet: boolean): void {
  let i = first;
  const end = first + count;
  for (; i < end && i & 7; i++)
    bits[i >> 3] = isSet ? bits[i >> 3]! | (1 << (i & 7)) : bits[i >> 3]! & ~(1 << (i & 7));
  const fullEnd = end & ~7;
  if (i < fullEnd) {
    bits.fill(isSet ? 0xff : 0, i >> 3, fullEnd >> 3);
    i = fullEnd;
  }
  for (; i < end; i++)
    bits[i >> 3] = isSet ? bits[i >> 3]! | (1 << (i & 7)) : bits[i >> 3]! & ~(1 << (i & 7));
}

export function setBits(bits: Uint8Array, first: number, count: number): void {
  fillBits(bits, first, count, true);
}

export function clearBits(bits: Uint8Array, first: number, count: number): void {
  fillBits(bits, first, count, false);
}

/** Offset (from `first`) of the first clear bit in [first, first + count), or -1 if all are set. */
export function firstClearBit(bits: Uint8Array, first: number, count: number): number {
  const end = first + count;
  let i = first;
  while (i < end) {
    if ((i & 7) === 0 && i + 8 <= end && bits[i >> 3] === 0xff) {
      i += 8;
      continue;
    }
    if (!(bits[i >> 3]! & (1 << (i & 7)))) return i - first;
    i++;
  }
  return -1;
}
