/**
 * Where `seesaw run` writes its records: an output file appended one record at a time, or stdout
 * (`--output -`).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { type BatchOutputRecord, formatRecordLine } from '../batch-output.ts';

/** Where records go: appended one write at a time, so each finished request is out at once. */
export interface RecordSink {
  write(record: BatchOutputRecord): void;
  close(): void;
}

export class RecordFileWriter implements RecordSink {
  private readonly fd: number;
  constructor(path: string) {
    this.fd = openSync(path, 'a');
  }
  write(record: BatchOutputRecord): void {
    writeSync(this.fd, formatRecordLine(record));
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** stdout through Node's stream (synchronous for files and pipes on Linux); it stays open. */
export const stdoutRecordSink: RecordSink = {
  write: (record) => void process.stdout.write(formatRecordLine(record)),
  close: () => {},
};
