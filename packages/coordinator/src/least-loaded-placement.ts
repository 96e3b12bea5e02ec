import type { EngineRequest, RequestOutput } from './request.ts';
import { randomSeed } from './sampling-params.ts';

/** The request with a null seed resolved once, so it samples the same stream wherever it (re)runs. */
export function withResolvedSeed(request: EngineRequest): EngineRequest {
  return request.sampling.seed === null
    ? { ...request, sampling: { ...request.sampling, seed: randomSeed() } }
    : request;
}

export interface Placement {
  request: EngineRequest;
  engine: number;
  /** Prompt + max output: what it adds to its engine's outstanding tokens. */
  tokens: number;
}

/**
 * Places requests on the engine with the fewest outstanding tokens (prompt + max output of its
 * unfinished requests; ties to the first candidate, i.e. the lowest index when candidates
 * ascend): deterministic, and it balances mixed lengths better than round robin.
 */
export class LeastLoadedPlacement {
  private readonly outstandingTokens: number[];
  /** Unfinished requests in the order they were (last) placed. */
  private readonly placements = new Map<string, Placement>();

  constructor(numEngines: number) {
    this.outstandingTokens = Array.from({ length: numEngines }, () => 0);
  }

  /** Unfinished placed requests. */
  get size(): number {
    return this.placements.size;
  }

  /**
   * Hands the request to `add` with the least loaded of `candidates` (non-empty); it counts only
   * once `add` returns, so a rejected request (add throws) leaves no trace.
   */
  place(request: EngineRequest, candidates: readonly number[], add: (engine: number) => void): void {
    let engine = candidates[0];
    for (const index of candidates)
      if (this.outstandingTokens[index] < this.outstandingTokens[engine]) engine = index;
    add(engine);
    this.record({ request, engine, tokens: request.promptTokenIds.length + request.sampling.maxTokens });
  }

  /** Forgets the finished requests, freeing their engines' tokens; unknown ids are ignored. */
  release(outputs: readonly RequestOutput[]): void {
    for (const output of outputs) {
      const placement = this.placements.get(output.requestId);
      if (!placement) continue;
      this.placements.delete(output.requestId);
      this.outstandingTokens[placement.engine] -= placement.tokens;
    }
  }

  /** Removes and returns, in placement order, the unfinished requests placed on `engines`. */
  takeFrom(engines: ReadonlySet<number>): Placement[] {
    const taken = [...this.placements.values()].filter((p) => engines.has(p.engine));
    for (const placement of taken) {
      this.placements.delete(placement.request.requestId);
      this.outstandingTokens[placement.engine] -= placement.tokens;
    }
    return taken;
  }

  /** Puts back placements taken by takeFrom (e.g. when there is nowhere left to move them). */
  restore(placements: readonly Placement[]): void {
    for (const placement of placements) this.record(placement);
  }

  private record(placement: Placement): void {
    this.placements.set(placement.request.requestId, placement);
    this.outstandingTokens[placement.engine] += placement.tokens;
  }
}
