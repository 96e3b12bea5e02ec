/**
 * When the seesaw scheduler switches phase. Every switch costs a re-shard, so each phase runs as
 * long as it can: prefill until nothing is mid-prompt and no further prompt can be admitted;
 * decode until the host tier has emptied enough to take a prefill phase's worth of prompts,
 * after which the running sequences are drained (each writes its KV back on its next step)
 * before the switch.
 */
import type { HostKvAllocator } from '@seesaw/kv-store';
import type { Sequence } from './sequence.ts';

/** The prefill-phase state the prefill -> decode decision reads. */
export interface PrefillSwitchState {
  prefilling: readonly Sequence[];
  parked: readonly Sequence[];
  waiting: readonly Sequence[];
  canReserveHost(numTokens: number): boolean;
}

/**
 * Prefill -> decode (with no step in flight): nothing is mid-prompt, something is parked, and no
 * prompt waits or the next one cannot reserve its host slots.
 */
export function isPrefillPhaseDone(state: PrefillSwitchState): boolean {
  if (state.prefilling.length > 0 || state.parked.length === 0) return false;
  const next = state.waiting[0];
  return !next || !state.canReserveHost(next.numTokens);
}

/** The decode-phase state the decode -> prefill decision reads. */
export interface DecodeSwitchState {
  waiting: readonly Sequence[];
  running: readonly Sequence[];
  /** Sequences admitted by a prefetch still in flight. */
  numIncoming: number;
  host: HostKvAllocator;
  /** Host slots in use / total. */
  hostUsage: number;
  hostLowMark: number;
  /** Whether a sequence is in a step in flight. */
  isBusy(seq: Sequence): boolean;
}

/**
 * Leaving decode: from the decision on, every decode step writes its sequences' KV back and
 * nothing is admitted; a sequence whose write-back step is updated is drained. The switch to
 * prefill is due once none is left running.
 */
export class DecodeDrain {
  /** Running sequences at the decision, in admission order; null unless draining. */
  private draining: Sequence[] | null = null;
  private readonly drained = new Set<Sequence>();

  get isDraining(): boolean {
    return this.draining !== null;
  }

  /** Sequences drained so far: their KV is in host slots. */
  get numDrained(): number {
    return this.drained.size;
  }

  /**
   * Decode -> prefill decision: prompts wait, host usage is at or below the low mark, no
   * prefetch is in flight, and the host can take every running sequence's KV after its
   * write-back step (one position more for a sequence now in flight) plus the next prompt,
   * which guarantees the prefill phase admits at least one prompt.
   */
  maybeStart(state: DecodeSwitchState): void {
    if (this.draining || state.waiting.length === 0 || state.numIncoming > 0) return;
    if (state.hostUsage > state.hostLowMark) return;
    const host = state.host;
    let numSlots = host.slotsForTokens(state.waiting[0].numTokens);
    for (const seq of state.running)
      numSlots += host.slotsForTokens(seq.numTokens + (state.isBusy(seq) ? 1 : 0));
    if (!host.canReserve(numSlots)) return;
    this.draining = [...state.running];
  }

  /** A sequence's write-back step was updated in decode. */
  add(seq: Sequence): void {
    this.drained.add(seq);
  }

  /**
   * Ends the drain at the switch to prefill, returning the drained sequences (finished ones left
   * out) in their decode admission order: they go to the front of the parked queue, so the next
   * decode phase resumes them first.
   */
  finish(): Sequence[] {
    const drained = (this.draining ?? []).filter((seq) => this.drained.has(seq));
    this.drained.clear();
    this.draining = null;
    return drained;
  }
}
