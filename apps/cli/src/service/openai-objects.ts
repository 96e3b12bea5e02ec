/** The service's state rows as the objects the OpenAI Files and Batch APIs return. */
import type { BatchRow, FileRow, ResultCounts } from './state-store.ts';

export function fileObject(file: FileRow) {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: null,
    status_details: null,
  };
}

export function batchObject(batch: BatchRow, counts: ResultCounts) {
  const time = (field: keyof BatchRow['times']) => batch.times[field] ?? null;
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors:
      batch.failure === null
        ? null
        : {
            object: 'list',
            data: [{ code: batch.failure.code, message: batch.failure.message, param: null, line: null }],
          },
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: batch.createdAt,
    in_progress_at: time('in_progress_at'),
    expires_at: time('expires_at'),
    finalizing_at: time('finalizing_at'),
    completed_at: time('completed_at'),
    failed_at: time('failed_at'),
    expired_at: time('expired_at'),
    cancelling_at: time('cancelling_at'),
    cancelled_at: time('cancelled_at'),
    request_counts: {
      total: batch.numTotal ?? 0,
      completed: counts.numCompleted,
      failed: counts.numFailed,
    },
    metadata: batch.metadata,
  };
}

export function modelObject(id: string, createdSeconds: number) {
  return { id, object: 'model', created: createdSeconds, owned_by: 'seesaw' };
}
