import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorRecord, formatRecordLine, successRecord } from './batch-output.ts';
import { prepareOutputForResume } from './resume.ts';

function success(customId: string): string {
  return formatRecordLine(
    successRecord({
      customId,
      modelName: 'm',
      promptTokenIds: [1],
      outputTokenIds: [2],
      text: '',
      finishReason: 'length',
      isTokenIdsReturned: true,
      createdSeconds: 0,
    }),
  );
}

function failure(customId: string): string {
  return formatRecordLine(errorRecord(customId, 'invalid_request', 'line 1: bad'));
}

describe('prepareOutputForResume', () => {
  let dir: string;
  let outputPath: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-resume-'));
    outputPath = join(dir, 'out.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts empty when there is no output file, and creates none', () => {
    const state = prepareOutputForResume(outputPath);
    expect(state.completedCustomIds.size).toBe(0);
    expect(state.isRewritten).toBe(false);
    expect(existsSync(outputPath)).toBe(false);
  });

  it('leaves a clean file untouched and reports its completed ids', () => {
    const content = success('a') + success('b');
    writeFileSync(outputPath, content);
    const state = prepareOutputForResume(outputPath);
    expect([...state.completedCustomIds]).toEqual(['a', 'b']);
    expect(state.isRewritten).toBe(false);
    expect(readFileSync(outputPath, 'utf8')).toBe(content);
  });

  it('drops error records, torn lines and repeated ids, keeping completed lines byte for byte', () => {
    const a = success('a');
    const b = success('b');
    writeFileSync(outputPath, a + failure('c') + b + success('a') + failure('a') + b.slice(0, 30));
    const state = prepareOutputForResume(outputPath);
    expect([...state.completedCustomIds].sort()).toEqual(['a', 'b']);
    expect(state.numDroppedErrorRecords).toBe(2);
    expect(state.numDroppedDuplicateRecords).toBe(1);
    expect(state.numDroppedCorruptLines).toBe(1);
    expect(state.isRewritten).toBe(true);
    expect(readFileSync(outputPath, 'utf8')).toBe(a + b);
    // The temporary file was renamed away, not left behind.
    expect(readdirSync(dir)).toEqual(['out.jsonl']);
  });

  it('adds the missing final newline so the next appended record starts its own line', () => {
    const a = success('a');
    writeFileSync(outputPath, a.trimEnd());
    const state = prepareOutputForResume(outputPath);
    expect(state.isRewritten).toBe(true);
    expect(readFileSync(outputPath, 'utf8')).toBe(a);
  });

  it('counts JSON that is not a record as corrupt', () => {
    writeFileSync(outputPath, `[1,2]\n"x"\n${success('a')}`);
    const state = prepareOutputForResume(outputPath);
    expect(state.numDroppedCorruptLines).toBe(2);
    expect(state.numDroppedErrorRecords).toBe(0);
    expect([...state.completedCustomIds]).toEqual(['a']);
  });
});
