import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { type StepBatch, type StepResult, startWorker } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, compareWithSingleDevice, type Device } from '../test/sharded-test-support.ts';
import type { TpRankWorkerInput, TpRankWorkerMessage } from '../test/tp-rank-test-worker.ts';
import { CpuDevice } from './cpu-device.ts';
import { createSharedMemoryGroup } from './shared-memory-group.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const WORKER_ENTRY = new URL('../test/tp-rank-test-worker.ts', import.meta.url);
const deviceOptions = { numThreads: 1, kvCacheBytes: 8 * 1024 * 1024, blockSize: BLOCK_SIZE };

/** A TP rank in a worker thread, answering one message per posted step. */
class RankThread {
  private readonly worker: Worker;
  private readonly inbox: TpRankWorkerMessage[] = [];
  private waiting: ((message: TpRankWorkerMessage) => void) | undefined;

  constructor(payload: TpRankWorkerInput) {
    this.worker = startWorker(WORKER_ENTRY, { workerData: { payload } });
    this.worker.on('message', (message: TpRankWorkerMessage) => {
      const waiter = this.waiting;
      this.waiting = undefined;
      if (waiter) waiter(message);
      else this.inbox.push(message);
    });
    this.worker.on('error', (error) => this.waiting?.({ kind: 'error', message: error.message }));
  }

  next(): Promise<TpRankWorkerMessage> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  post(step: StepBatch | null): void {
    this.worker.postMessage(step);
  }

  async stop(): Promise<void> {
    this.post(null);
    await this.worker.terminate();
  }
}

describe('T2 with each rank in its own worker thread (SharedMemoryGroup)', () => {
  it('gives the same greedy tokens as one device, and bit-identical answers on both ranks', async () => {
    const tp = 2;
    // One slot holds a 32-token step's [T][H] partial sums; bigger prefills go in chunks.
    const descriptors = createSharedMemoryGroup(tp, 32 * 256);
    const ranks = descriptors.map(
      (descriptor, tpRank) =>
        new RankThread({
          modelDir: FIXTURE,
          shard: { tp, tpRank, pp: 1, ppStage: 0 },
          descriptor,
          options: deviceOptions,
        }),
    );
    try {
      const ready = await Promise.all(ranks.map((rank) => rank.next()));
      const numKvBlocks = Math.min(
        ...ready.map((m) => {
          if (m.kind !== 'ready') throw new Error(`rank failed to start: ${JSON.stringify(m)}`);
          return m.numKvBlocks;
        }),
      );
      const sharded: Device = {
        numKvBlocks,
        async execute(step) {
          for (const rank of ranks) rank.post(step);
          const answers = await Promise.all(ranks.map((rank) => rank.next()));
          const results = answers.map((m): StepResult => {
            if (m.kind !== 'result') throw new Error(`rank failed: ${JSON.stringify(m)}`);
            return m.result;
          });
          expect(results[1]).toEqual(results[0]);
          return results[0];
        },
      };
      const single = await CpuDevice.load(FIXTURE, deviceOptions);
      const error = await compareWithSingleDevice(sharded, single, single.config.vocabSize);
      expect(error).toBe(0);
    } finally {
      await Promise.all(ranks.map((rank) => rank.stop()));
    }
  });
});
