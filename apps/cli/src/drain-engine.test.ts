/**
 * drainEngine hands requests an engine refused after queueing them (a cluster job's coordinator
 * rejecting one request alone, issue 13 item 9) to onRejected, between the finished ones; the
 * end-to-end path over a real coordinator is test/security/job-rejection.test.ts.
 */
import type { EngineStats, RequestOutput } from '@seesaw/coordinator';
import { describe, expect, it } from 'vitest';
import { drainEngine, type SessionEngine } from './engine-session.ts';

/** An engine scripted step by step: what each step finishes and rejects. */
function scriptedEngine(steps: Array<{ finished: string[]; rejected: string[] }>): SessionEngine {
  let stepIndex = 0;
  let pendingRejections: Array<{ requestId: string; message: string }> = [];
  const output = (requestId: string): RequestOutput =>
    ({ requestId, promptTokenIds: [1], outputTokenIds: [2], finishReason: 'length' }) as RequestOutput;
  return {
    maxModelLen: 64,
    stats: { numOutputTokens: 0, numPromptTokensComputed: 0 } as EngineStats,
    addRequest: () => {},
    hasUnfinishedRequests: () => stepIndex < steps.length || pendingRejections.length > 0,
    step: async () => {
      const step = steps[stepIndex++]!;
      pendingRejections = step.rejected.map((requestId) => ({ requestId, message: `${requestId} is bad` }));
      return step.finished.map(output);
    },
    takeRejections: () => pendingRejections.splice(0),
  };
}

describe('drainEngine and rejected requests', () => {
  it('passes each rejection to onRejected in step order, with the finished requests', async () => {
    const seen: string[] = [];
    const stats = await drainEngine(
      scriptedEngine([
        { finished: ['a'], rejected: ['bad-1'] },
        { finished: [], rejected: ['bad-2'] },
        { finished: ['b'], rejected: [] },
      ]),
      (o) => seen.push(`finished ${o.requestId}`),
      undefined,
      (requestId, message) => seen.push(`rejected ${requestId}: ${message}`),
    );
    expect(seen).toEqual([
      'finished a',
      'rejected bad-1: bad-1 is bad',
      'rejected bad-2: bad-2 is bad',
      'finished b',
    ]);
    expect(stats.numFinished).toBe(2);
  });

  it('throws, naming the request, when a rejection comes and nobody handles it', async () => {
    await expect(
      drainEngine(scriptedEngine([{ finished: [], rejected: ['bad-1'] }]), () => {}),
    ).rejects.toThrow(/engine rejected "bad-1": bad-1 is bad/);
  });
});
