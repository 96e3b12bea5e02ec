/**
 * Resuming a run into an existing output file: completed (success) records stay and their
 * custom_ids are skipped; error records, torn lines from a crash and repeated custom_ids are
 * dropped so those lines are evaluated again. The kept lines are written to a temporary file
 * in the same directory and renamed over the original, so a crash at any point leaves either
 * the old file or the new one, never a file missing completed work.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { isSuccessRecord } from './batch-output.ts';

export interface ResumeState {
  /** custom_ids with a success record in the output file. */
  completedCustomIds: Set<string>;
  numDroppedErrorRecords: number;
  /** Lines that are not JSON records (e.g. cut short by a crash). */
  numDroppedCorruptLines: number;
  /** Success records for a custom_id that already had one earlier in the file. */
  numDroppedDuplicateRecords: number;
  /** Success records whose request_id no longer matches the input line's request (re-run). */
  numDroppedChangedRecords: number;
  /** Whether the file was rewritten. */
  isRewritten: boolean;
}

function notResultsFile(path: string, why: string): Error {
  return new Error(
    `--output ${path} exists and is not a seesaw results file (${why}); refusing to overwrite it: ` +
      'choose another --output or remove the file',
  );
}

function writeFileDurably(path: string, content: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads `outputPath` (if any), keeps its completed records and reports what it dropped.
 * `expectedRequestIds` (custom_id -> requestHash of the current input line): a record whose
 * request_id differs is dropped so the changed request runs again. A file that is not a results
 * file (a line that is not JSON before the last, or no JSON object at all) is refused, never
 * overwritten.
 */
export function prepareOutputForResume(
  outputPath: string,
  expectedRequestIds: ReadonlyMap<string, string> = new Map(),
): ResumeState {
  const state: ResumeState = {
    completedCustomIds: new Set(),
    numDroppedErrorRecords: 0,
    numDroppedCorruptLines: 0,
    numDroppedDuplicateRecords: 0,
    numDroppedChangedRecords: 0,
    isRewritten: false,
  };
  if (!existsSync(outputPath)) return state;
  const content = readFileSync(outputPath, 'utf8');
  const keptLines: string[] = [];
  const lines = content.split('\n').filter((line) => line.trim() !== '');
  let numObjects = 0;
  for (const [index, line] of lines.entries()) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      // Only the last line may be torn (a crash mid-append); anything else is not our file.
      if (index !== lines.length - 1) throw notResultsFile(outputPath, `line ${index + 1} is not JSON`);
      state.numDroppedCorruptLines++;
      continue;
    }
    if (typeof record === 'object' && record !== null && !Array.isArray(record)) numObjects++;
    if (!isSuccessRecord(record)) {
      const isErrorRecord = typeof record === 'object' && record !== null && 'error' in record;
      if (isErrorRecord) state.numDroppedErrorRecords++;
      else state.numDroppedCorruptLines++;
      continue;
    }
    if (state.completedCustomIds.has(record.custom_id)) {
      state.numDroppedDuplicateRecords++;
      continue;
    }
    const expected = expectedRequestIds.get(record.custom_id);
    if (expected !== undefined && record.response.request_id !== expected) {
      state.numDroppedChangedRecords++;
      continue;
    }
    state.completedCustomIds.add(record.custom_id);
    keptLines.push(line);
  }
  if (lines.length > 0 && numObjects === 0) throw notResultsFile(outputPath, 'it holds no JSON records');
  const numDropped =
    state.numDroppedErrorRecords +
    state.numDroppedCorruptLines +
    state.numDroppedDuplicateRecords +
    state.numDroppedChangedRecords;
  // A file not ending in a newline would glue the next appended record onto its last line.
  const isMissingFinalNewline = content.length > 0 && !content.endsWith('\n');
  if (numDropped > 0 || isMissingFinalNewline) {
    const tempPath = `${outputPath}.resume-${process.pid}.tmp`;
    writeFileDurably(tempPath, keptLines.map((line) => `${line}\n`).join(''));
    renameSync(tempPath, outputPath);
    state.isRewritten = true;
  }
  return state;
}
