/**
 * One request line asks for prompts.length x n choices (OpenAI's list of prompts and `n`); each
 * choice is its own engine request, and the line's record is written once all are finished.
 * Choices are numbered as OpenAI numbers them: prompt p's choice j has index p * n + j.
 *
 * Seeds: choice j of a prompt samples with choiceSeed(seed, j). Choice 0 keeps the request's
 * seed, so a line with n: 1 is the request it always was, and the same prompt gives the same
 * answers alone or in a list; later choices get distinct streams derived from (seed, j). A
 * request without a seed leaves every choice's seed to the engine (independent random seeds).
 */
import type { EngineRequest, RequestOutput } from '@seesaw/coordinator';
import type { ParsedRequest } from './input-lines.ts';

const SEED_RANGE = 2n ** 52n;
// The 64-bit golden ratio's high bits: consecutive choices' seeds land far apart.
const SEED_STRIDE = 0x9e3779b97f4a7n;

/** The seed of choice `choice` (0-based, within its prompt) of a request with `seed`. */
export function choiceSeed(seed: number | null, choice: number): number | null {
  if (seed === null || choice === 0) return seed;
  const mixed = (BigInt(seed) + BigInt(choice) * SEED_STRIDE) % SEED_RANGE;
  return Number(mixed);
}

export function numChoicesOf(request: ParsedRequest): number {
  return request.prompts.length * request.n;
}

/** What the caller hooks into each choice's engine request (functions of this process). */
export interface ChoiceHooks {
  /** Early stop (stop strings: stopWhenOf), the same for every choice. */
  stopWhen?: EngineRequest['stopWhen'];
  /** Progress of choice `index` (token streaming): the outputs so far after each token. */
  onProgress?: (index: number, outputTokenIds: readonly number[]) => void;
}

/**
 * The engine requests of a line's choices, in choice order. A single choice keeps `idBase` as
 * its id (the engine sees exactly the request it saw before lists and n existed); several are
 * `idBase#index`.
 */
export function choiceRequestsOf(
  request: ParsedRequest,
  idBase: string,
  hooks: ChoiceHooks = {},
): EngineRequest[] {
  const { stopWhen, onProgress } = hooks;
  const hooksOf = (index: number) => ({
    ...(stopWhen ? { stopWhen } : {}),
    ...(onProgress ? { onProgress: (ids: readonly number[]) => onProgress(index, ids) } : {}),
  });
  if (numChoicesOf(request) === 1) {
    return [
      {
        requestId: idBase,
        promptTokenIds: request.promptTokenIds,
        sampling: request.sampling,
        ...hooksOf(0),
      },
    ];
  }
  return request.prompts.flatMap((promptTokenIds, p) =>
    Array.from({ length: request.n }, (_, j) => ({
      requestId: `${idBase}#${p * request.n + j}`,
      promptTokenIds,
      sampling: { ...request.sampling, seed: choiceSeed(request.sampling.seed, j) },
      ...hooksOf(p * request.n + j),
    })),
  );
}

/** Collects one line's finished choices; complete once every choice has its output. */
export class ChoiceGather {
  private readonly outputs: (RequestOutput | undefined)[];
  private numMissing: number;

  constructor(numChoices: number) {
    this.outputs = new Array(numChoices).fill(undefined);
    this.numMissing = numChoices;
  }

  /** Records choice `index`; returns every choice's output, in order, once the last arrives. */
  add(index: number, output: RequestOutput): RequestOutput[] | null {
    if (this.outputs[index] !== undefined) throw new Error(`choice ${index} finished twice`);
    this.outputs[index] = output;
    this.numMissing--;
    return this.numMissing === 0 ? (this.outputs as RequestOutput[]) : null;
  }
}

/** The choice index an engine request id of choiceRequestsOf stands for. */
export function choiceIndexOf(requestId: string, idBase: string): number {
  if (requestId === idBase) return 0;
  const index = Number(requestId.slice(idBase.length + 1));
  if (!requestId.startsWith(`${idBase}#`) || !Number.isInteger(index)) {
    throw new Error(`engine request '${requestId}' is not a choice of '${idBase}'`);
  }
  return index;
}

/**
 * Runs a line's choices through a promise-style submit (the service's engine loop): the
 * rejection of the first choice refused, or all outputs in choice order.
 */
export function submitChoices(
  request: ParsedRequest,
  idBase: string,
  submit: (request: EngineRequest) => { rejection: string } | { output: Promise<RequestOutput> },
  hooks: ChoiceHooks = {},
): { rejection: string } | { outputs: Promise<RequestOutput[]> } {
  const pending: Promise<RequestOutput>[] = [];
  for (const choice of choiceRequestsOf(request, idBase, hooks)) {
    const submission = submit(choice);
    // Choices already queued still run; their outputs are dropped with the line's error.
    if ('rejection' in submission) {
      for (const output of pending) output.catch(() => {});
      return { rejection: submission.rejection };
    }
    pending.push(submission.output);
  }
  return { outputs: Promise.all(pending) };
}
