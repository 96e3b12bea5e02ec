/**
 * Whether a request's KV fits everywhere the seesaw scheduler may put it: the host tier (every
 * unfinished sequence is parked there at a switch) and each layout's device cache (a sequence
 * runs alone in the worst case). Checked on arrival against what is known, and again for every
 * unfinished sequence when a layout's capacity becomes known at enterPhase.
 */
import type { Sequence } from './sequence.ts';
import type { Phase } from './step-scheduler.ts';

/**
 * Positions of KV a request can need: min(prompt + maxTokens, maxModelLen) - 1 (the last token
 * is sampled, never computed).
 */
export function kvTokensNeeded(promptLength: number, maxTokens: number, maxModelLen: number): number {
  return Math.min(promptLength + maxTokens, maxModelLen) - 1;
}

/** Why `numKvTokens` of KV cannot be held (the host tier first, then prefill, then decode), or null. */
export function kvOverflowReason(
  numKvTokens: number,
  hostTokens: number,
  capacityTokens: Partial<Record<Phase, number>>,
): string | null {
  if (numKvTokens > hostTokens)
    return `needs up to ${numKvTokens} tokens of KV, the host KV tier holds ${hostTokens}`;
  for (const phase of ['prefill', 'decode'] as const) {
    const capacity = capacityTokens[phase];
    if (capacity !== undefined && numKvTokens > capacity)
      return `needs up to ${numKvTokens} tokens of KV, the ${phase} layout's device cache holds ${capacity}`;
  }
  return null;
}

/** Throws unless each of `seqs` could run alone in `phase`'s device cache of `capacity` tokens. */
export function checkLayoutHoldsAll(
  phase: Phase,
  capacity: number,
  seqs: Iterable<Sequence>,
  maxModelLen: number,
): void {
  for (const seq of seqs) {
    const numKvTokens = kvTokensNeeded(seq.promptTokenIds.length, seq.maxTokens, maxModelLen);
    if (numKvTokens > capacity) {
      throw new Error(
        `the ${phase} layout's device cache holds ${capacity} tokens, but request ` +
          `${JSON.stringify(seq.requestId)} needs up to ${numKvTokens}`,
      );
    }
  }
}
