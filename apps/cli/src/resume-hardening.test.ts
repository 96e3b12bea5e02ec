/**
 * Issue 13 item 10: resume refuses an output file that is not a results file, re-runs requests
 * whose body changed (matched by custom_id plus the request hash), and does not count a record
 * without a completion body as completed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatRecordLine, successRecord } from './batch-output.ts';
import type { ParsedRequest } from './input-lines.ts';
import { requestHash } from './request-hash.ts';
import { prepareOutputForResume } from './resume.ts';

function request(maxTokens: number): ParsedRequest {
  return {
    lineNumber: 1,
    customId: 'a',
    promptTokenIds: [1, 2, 3],
    prompts: [[1, 2, 3]],
    promptTexts: [null],
    n: 1,
    isEchoed: false,
    sampling: { maxTokens, temperature: 0 } as unknown as ParsedRequest['sampling'],
    isTokenIdsReturned: false,
    isChat: false,
    stopStrings: [],
  };
}

function completed(customId: string, requestId: string): string {
  return formatRecordLine(
    successRecord({
      customId,
      modelName: 'm',
      promptTokenIds: [1, 2, 3],
      outputTokenIds: [4],
      text: 'x',
      finishReason: 'length',
      isTokenIdsReturned: false,
      createdSeconds: 0,
      requestId,
    }),
  );
}

describe('resume hardening', () => {
  let dir: string;
  let outputPath: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-resume-hard-'));
    outputPath = join(dir, 'notes.txt');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('item 10: refuses to resume into a text file and leaves it untouched', () => {
    const notes = 'meeting notes\nbuy milk\nlast line\n';
    writeFileSync(outputPath, notes);
    expect(() => prepareOutputForResume(outputPath)).toThrow(
      /notes\.txt exists and is not a seesaw results file \(line 1 is not JSON\); refusing to overwrite it/,
    );
    writeFileSync(outputPath, 'one line only\n');
    expect(() => prepareOutputForResume(outputPath)).toThrow(/holds no JSON records/);
    writeFileSync(outputPath, notes);
    expect(readFileSync(outputPath, 'utf8')).toBe(notes);
  });

  it('item 10: a request whose max_tokens changed is re-run, an unchanged one is kept', () => {
    expect(requestHash(request(16))).not.toBe(requestHash(request(32)));
    expect(requestHash(request(16))).toBe(requestHash(request(16)));
    const b = completed('b', 'req_b');
    writeFileSync(outputPath, completed('a', requestHash(request(16))) + b);
    const same = prepareOutputForResume(outputPath, new Map([['a', requestHash(request(16))]]));
    expect([...same.completedCustomIds].sort()).toEqual(['a', 'b']);
    const changed = prepareOutputForResume(outputPath, new Map([['a', requestHash(request(32))]]));
    expect(changed.numDroppedChangedRecords).toBe(1);
    expect([...changed.completedCustomIds]).toEqual(['b']);
    expect(readFileSync(outputPath, 'utf8')).toBe(b);
  });

  it('item 10: a record without a completion body does not count as completed', () => {
    const bodyless = JSON.stringify({ custom_id: 'a', error: null, response: { status_code: 200 } });
    writeFileSync(outputPath, `${bodyless}\n${completed('b', 'req_b')}`);
    const state = prepareOutputForResume(outputPath);
    expect([...state.completedCustomIds]).toEqual(['b']);
  });
});
