import type { DeviceSamplingParams } from '@seesaw/protocol';

function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The test model: the next token is a hash of the whole context (every token, in order),
 * mixed with (seed, outputIndex) when temperature > 0, reduced to [0, vocabSize).
 */
export function hashNextToken(
  context: readonly number[],
  sampling: DeviceSamplingParams,
  outputIndex: number,
  vocabSize: number,
): number {
  let hash = 0x811c9dc5;
  for (let p = 0; p < context.length; p++) hash = mix32(hash ^ context[p]) + p;
  if (sampling.temperature > 0) {
    hash = mix32(hash ^ (sampling.seed >>> 0));
    hash = mix32(hash ^ Math.floor(sampling.seed / 0x1_0000_0000));
    hash = mix32(hash ^ outputIndex);
  }
  return mix32(hash) % vocabSize;
}
