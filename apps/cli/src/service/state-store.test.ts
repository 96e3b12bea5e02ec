/** The service's SQLite state on a real file: reopened state, results written once, paging, atomic finish. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateStore } from './state-store.ts';

describe('StateStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const newBatch = (store: StateStore, inputFileId: string) =>
    store.addBatch({
      endpoint: '/v1/completions',
      inputFileId,
      completionWindow: '24h',
      metadata: null,
      expiresAt: 2_000_000_000,
    });

  it('keeps files, batches and results across a reopen; a result is written once', () => {
    const first = new StateStore(dir);
    const file = first.addFile('in.jsonl', 'batch', Buffer.from('{"prompt": "a"}\n'));
    const batch = newBatch(first, file.id);
    first.updateBatch(batch.id, 'in_progress', { numTotal: 3 });
    expect(first.addResult(batch.id, 'a', 1, false, 'ok-a\n')).toBe(true);
    expect(first.addResult(batch.id, 'a', 1, false, 'again-a\n')).toBe(false);
    expect(first.addResult(batch.id, 'b', 2, true, 'err-b\n')).toBe(true);
    first.close();

    const second = new StateStore(dir);
    expect(second.fileContent(file.id)?.toString()).toBe('{"prompt": "a"}\n');
    expect(second.unfinishedBatches().map((row) => row.id)).toEqual([batch.id]);
    expect(second.completedCustomIds(batch.id)).toEqual(new Set(['a', 'b']));
    expect(second.resultCounts(batch.id)).toEqual({ numCompleted: 1, numFailed: 1 });
    const done = second.finishBatch(batch.id, 'completed');
    expect(done.status).toBe('completed');
    expect(done.times.in_progress_at).toBeTypeOf('number');
    expect(done.times.completed_at).toBeTypeOf('number');
    expect(second.fileContent(done.outputFileId as string)?.toString()).toBe('ok-a\n');
    expect(second.fileContent(done.errorFileId as string)?.toString()).toBe('err-b\n');
    expect(second.unfinishedBatches()).toEqual([]);
    second.close();
  });

  it('lists batches newest first, page by page with after/limit', () => {
    const store = new StateStore(dir);
    const file = store.addFile('in.jsonl', 'batch', Buffer.from('x\n'));
    const ids = [0, 1, 2, 3, 4].map(() => newBatch(store, file.id).id);
    const page1 = store.listBatches(null, 2);
    expect(page1.batches.map((row) => row.id)).toEqual([ids[4], ids[3]]);
    expect(page1.hasMore).toBe(true);
    const page3 = store.listBatches(ids[1], 2);
    expect(page3.batches.map((row) => row.id)).toEqual([ids[0]]);
    expect(page3.hasMore).toBe(false);
    expect(() => store.listBatches('batch_nope', 2)).toThrow("no batch 'batch_nope'");
    store.close();
  });

  it('deletes a file and says whether there was one', () => {
    const store = new StateStore(dir);
    const file = store.addFile('in.jsonl', 'batch', Buffer.from('x\n'));
    expect(store.deleteFile(file.id)).toBe(true);
    expect(store.getFile(file.id)).toBeNull();
    expect(store.deleteFile(file.id)).toBe(false);
    store.close();
  });
});
