/**
 * Checks the coordinator makes on each request a job client submits, beyond the engine's own
 * (validateRequest: empty, too long, bad sampling): a requestId still running in the job, and
 * token ids outside the model's vocabulary (a device would fail the whole step on them). A
 * failing request is rejected alone, so the valid requests of the same batch still run.
 */
import { type EngineRequest, RequestRejectedError } from '../request.ts';

export function checkJobRequest(
  request: EngineRequest,
  vocabSize: number,
  liveRequestIds: ReadonlySet<string>,
): void {
  const reject = (why: string): never => {
    throw new RequestRejectedError(`request ${JSON.stringify(request.requestId)} rejected: ${why}`);
  };
  if (liveRequestIds.has(request.requestId))
    reject('duplicate requestId (one with this id is still running)');
  const badPrompt = request.promptTokenIds.findIndex((id) => id >= vocabSize);
  if (badPrompt >= 0) {
    reject(
      `prompt token id ${request.promptTokenIds[badPrompt]} at index ${badPrompt} is outside the vocabulary [0, ${vocabSize})`,
    );
  }
  const badStop = request.sampling.stopTokenIds.find((id) => id >= vocabSize);
  if (badStop !== undefined) reject(`stop token id ${badStop} is outside the vocabulary [0, ${vocabSize})`);
}
