/**
 * The durable state of `seesaw serve` in one SQLite file under --state-dir: uploaded files,
 * batches, and one row per finished request of a batch. A request's result is committed the
 * moment it finishes, so a server killed mid-batch and restarted continues from those rows:
 * a custom_id with a row is never run again, and a row is never written twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** Statuses a batch can still leave on its own: a restarted server picks these up again. */
export const UNFINISHED_STATUSES: readonly BatchStatus[] = [
  'validating',
  'in_progress',
  'finalizing',
  'cancelling',
];

export interface FileRow {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  createdAt: number;
}

export interface BatchRow {
  id: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  status: BatchStatus;
  /** Unix seconds of each status the batch entered; null when it has not. */
  times: Partial<Record<BatchTimeField, number>>;
  createdAt: number;
  outputFileId: string | null;
  errorFileId: string | null;
  /** Why the batch failed as a whole (not per-request errors); null when it did not. */
  failure: { code: string; message: string } | null;
  metadata: Record<string, string> | null;
  /** Requests in the input file; null until validated. */
  numTotal: number | null;
}

export type BatchTimeField =
  /** When the completion window ends (set at creation). */
  | 'expires_at'
  | 'expired_at'
  | 'in_progress_at'
  | 'finalizing_at'
  | 'completed_at'
  | 'failed_at'
  | 'cancelling_at'
  | 'cancelled_at';

export interface ResultCounts {
  numCompleted: number;
  numFailed: number;
}

export function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY, filename TEXT NOT NULL, purpose TEXT NOT NULL, bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, endpoint TEXT NOT NULL,
  input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL, status TEXT NOT NULL,
  created_at INTEGER NOT NULL, times TEXT NOT NULL DEFAULT '{}', output_file_id TEXT,
  error_file_id TEXT, failure TEXT, metadata TEXT, num_total INTEGER);
CREATE TABLE IF NOT EXISTS results (
  batch_id TEXT NOT NULL, custom_id TEXT NOT NULL, line_number INTEGER NOT NULL,
  is_error INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (batch_id, custom_id));
`;

interface BatchDbRow {
  seq: number;
  id: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  created_at: number;
  times: string;
  output_file_id: string | null;
  error_file_id: string | null;
  failure: string | null;
  metadata: string | null;
  num_total: number | null;
}

function toBatchRow(row: BatchDbRow): BatchRow {
  return {
    id: row.id,
    endpoint: row.endpoint,
    inputFileId: row.input_file_id,
    completionWindow: row.completion_window,
    status: row.status,
    times: JSON.parse(row.times),
    createdAt: row.created_at,
    outputFileId: row.output_file_id,
    errorFileId: row.error_file_id,
    failure: row.failure === null ? null : JSON.parse(row.failure),
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    numTotal: row.num_total,
  };
}

export class StateStore {
  private readonly db: Database.Database;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true });
    this.db = new Database(join(stateDir, 'seesaw-service.sqlite'));
    // WAL + synchronous=NORMAL: a committed result survives a killed process (not a power cut).
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  addFile(filename: string, purpose: string, content: Buffer): FileRow {
    const row: FileRow = {
      id: newId('file-'),
      filename,
      purpose,
      bytes: content.length,
      createdAt: nowSeconds(),
    };
    this.db
      .prepare(
        'INSERT INTO files (id, filename, purpose, bytes, created_at, content) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(row.id, filename, purpose, row.bytes, row.createdAt, content);
    return row;
  }

  getFile(id: string): FileRow | null {
    const row = this.db
      .prepare('SELECT id, filename, purpose, bytes, created_at AS createdAt FROM files WHERE id = ?')
      .get(id) as FileRow | undefined;
    return row ?? null;
  }

  listFiles(): FileRow[] {
    return this.db
      .prepare(
        'SELECT id, filename, purpose, bytes, created_at AS createdAt FROM files ORDER BY created_at, id',
      )
      .all() as FileRow[];
  }

  fileContent(id: string): Buffer | null {
    const row = this.db.prepare('SELECT content FROM files WHERE id = ?').get(id) as
      | { content: Buffer }
      | undefined;
    return row?.content ?? null;
  }

  deleteFile(id: string): boolean {
    return this.db.prepare('DELETE FROM files WHERE id = ?').run(id).changes > 0;
  }

  addBatch(options: {
    endpoint: string;
    inputFileId: string;
    completionWindow: string;
    metadata: Record<string, string> | null;
    /** Unix seconds when the batch expires unless finished. */
    expiresAt: number;
  }): BatchRow {
    const id = newId('batch_');
    this.db
      .prepare(
        `INSERT INTO batches (id, endpoint, input_file_id, completion_window, status, created_at, times, metadata)
         VALUES (?, ?, ?, ?, 'validating', ?, ?, ?)`,
      )
      .run(
        id,
        options.endpoint,
        options.inputFileId,
        options.completionWindow,
        nowSeconds(),
        JSON.stringify({ expires_at: options.expiresAt }),
        options.metadata === null ? null : JSON.stringify(options.metadata),
      );
    return this.mustGetBatch(id);
  }

  getBatch(id: string): BatchRow | null {
    const row = this.db.prepare('SELECT * FROM batches WHERE id = ?').get(id) as BatchDbRow | undefined;
    return row === undefined ? null : toBatchRow(row);
  }

  mustGetBatch(id: string): BatchRow {
    const batch = this.getBatch(id);
    if (batch === null) throw new Error(`batch ${id} is not in the state store`);
    return batch;
  }

  /** Newest first, as OpenAI lists them; `afterId` is the last id of the previous page. */
  listBatches(afterId: string | null, limit: number): { batches: BatchRow[]; hasMore: boolean } {
    let afterSeq = Number.MAX_SAFE_INTEGER;
    if (afterId !== null) {
      const row = this.db.prepare('SELECT seq FROM batches WHERE id = ?').get(afterId) as
        | { seq: number }
        | undefined;
      if (row === undefined) throw new Error(`no batch '${afterId}' to list after`);
      afterSeq = row.seq;
    }
    const rows = this.db
      .prepare('SELECT * FROM batches WHERE seq < ? ORDER BY seq DESC LIMIT ?')
      .all(afterSeq, limit + 1) as BatchDbRow[];
    return { batches: rows.slice(0, limit).map(toBatchRow), hasMore: rows.length > limit };
  }

  /** Batches a server must (re)start, oldest first: the order they were created in. */
  unfinishedBatches(): BatchRow[] {
    const marks = UNFINISHED_STATUSES.map(() => '?').join(', ');
    const rows = this.db
      .prepare(`SELECT * FROM batches WHERE status IN (${marks}) ORDER BY seq`)
      .all(...UNFINISHED_STATUSES) as BatchDbRow[];
    return rows.map(toBatchRow);
  }

  /** Moves a batch to `status`, stamping its time field, plus any other column changes. */
  updateBatch(
    id: string,
    status: BatchStatus,
    changes: {
      outputFileId?: string | null;
      errorFileId?: string | null;
      failure?: BatchRow['failure'];
      numTotal?: number;
    } = {},
  ): BatchRow {
    const batch = this.mustGetBatch(id);
    const times = { ...batch.times };
    const timeField = `${status}_at` as BatchTimeField;
    if (status !== 'validating' && times[timeField] === undefined) times[timeField] = nowSeconds();
    this.db
      .prepare(
        `UPDATE batches SET status = ?, times = ?, output_file_id = ?, error_file_id = ?, failure = ?, num_total = ?
         WHERE id = ?`,
      )
      .run(
        status,
        JSON.stringify(times),
        changes.outputFileId === undefined ? batch.outputFileId : changes.outputFileId,
        changes.errorFileId === undefined ? batch.errorFileId : changes.errorFileId,
        changes.failure === undefined
          ? batch.failure && JSON.stringify(batch.failure)
          : JSON.stringify(changes.failure),
        changes.numTotal ?? batch.numTotal,
        id,
      );
    return this.mustGetBatch(id);
  }

  /**
   * Ends a batch: its output and error files (from its results, in line order) and its final
   * status in one transaction, so a server killed while finalizing leaves no half-written files.
   */
  finishBatch(batchId: string, status: 'completed' | 'cancelled' | 'expired'): BatchRow {
    return this.db.transaction(() => {
      const fileFor = (isError: boolean) => {
        const lines = this.resultLines(batchId, isError);
        if (lines === '') return null;
        const name = `${batchId}_${isError ? 'error' : 'output'}.jsonl`;
        return this.addFile(name, 'batch_output', Buffer.from(lines)).id;
      };
      return this.updateBatch(batchId, status, { outputFileId: fileFor(false), errorFileId: fileFor(true) });
    })();
  }

  /** Records a finished request; false (and nothing written) when it already has a result. */
  addResult(
    batchId: string,
    customId: string,
    lineNumber: number,
    isError: boolean,
    record: string,
  ): boolean {
    return (
      this.db
        .prepare(
          'INSERT OR IGNORE INTO results (batch_id, custom_id, line_number, is_error, record) VALUES (?, ?, ?, ?, ?)',
        )
        .run(batchId, customId, lineNumber, isError ? 1 : 0, record).changes > 0
    );
  }

  completedCustomIds(batchId: string): Set<string> {
    const rows = this.db.prepare('SELECT custom_id FROM results WHERE batch_id = ?').all(batchId) as {
      custom_id: string;
    }[];
    return new Set(rows.map((row) => row.custom_id));
  }

  resultCounts(batchId: string): ResultCounts {
    const row = this.db
      .prepare(
        'SELECT COALESCE(SUM(is_error = 0), 0) AS ok, COALESCE(SUM(is_error = 1), 0) AS failed FROM results WHERE batch_id = ?',
      )
      .get(batchId) as { ok: number; failed: number };
    return { numCompleted: row.ok, numFailed: row.failed };
  }

  /** The batch's records of one kind, in input line order, as JSONL. */
  resultLines(batchId: string, isError: boolean): string {
    const rows = this.db
      .prepare('SELECT record FROM results WHERE batch_id = ? AND is_error = ? ORDER BY line_number')
      .all(batchId, isError ? 1 : 0) as { record: string }[];
    return rows.map((row) => row.record).join('');
  }
}
