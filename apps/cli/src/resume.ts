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
  /** Whether the file was rewritten. */
  isRewritten: boolean;
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

/** Reads `outputPath` (if any), keeps its completed records and reports what it dropped. */
export function prepareOutputForResume(outputPath: string): ResumeState {
  const state: ResumeState = {
    completedCustomIds: new Set(),
    numDroppedErrorRecords: 0,
    numDroppedCorruptLines: 0,
    numDroppedDuplicateRecords: 0,
    isRewritten: false,
  };
  if (!existsSync(outputPath)) return state;
  const content = readFileSync(outputPath, 'utf8');
  const keptLines: string[] = [];
  for (const line of content.split('\n')) {
    if (line.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      state.numDroppedCorruptLines++;
      continue;
    }
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
    state.completedCustomIds.add(record.custom_id);
    keptLines.push(line);
  }
  const numDropped =
    state.numDroppedErrorRecords + state.numDroppedCorruptLines + state.numDroppedDuplicateRecords;
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
