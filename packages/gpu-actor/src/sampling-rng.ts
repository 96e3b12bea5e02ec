/**
 * Counter-based uniform draws for sampling. The draw for a request's output token i is a
 * pure function of (seed, i): the same tokens come out whatever the batch, the chunking or
 * the preemptions, and whichever device runs the step.
 */

// Murmur3's 32-bit finaliser: a bijective avalanche mix.
function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform double in [0, 1) for (seed, index); seed is any safe integer, index >= 0. */
export function samplingUniform(seed: number, index: number): number {
  const seedLow = seed >>> 0;
  const seedHigh = Math.floor(seed / 0x1_0000_0000) >>> 0;
  const a = mix32(seedLow ^ mix32(index + 0x9e3779b9));
  const b = mix32(seedHigh ^ mix32(a + 0x7f4a7c15));
  const c = mix32(a ^ mix32(b + index * 0x2545f491));
  // 53 random bits: 21 from b's top, 32 from c.
  return ((b >>> 11) * 0x1_0000_0000 + c) / 2 ** 53;
}
