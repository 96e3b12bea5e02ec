/**
 * Tests only: a `seesaw serve` child process on loopback, its address read from its first
 * stdout line, and what it wrote to stderr (for failure messages and restart logs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from '../src/model-cache.ts';
import { SEESAW_BIN } from './e2e-test-support.ts';

export interface ServeProcess {
  child: ChildProcess;
  /** e.g. http://127.0.0.1:40123/v1, the baseURL of an OpenAI client. */
  baseUrl: string;
  stderr(): string;
  /** Resolves with the exit signal or code once the process is gone. */
  exited: Promise<NodeJS.Signals | number | null>;
}

export function startServe(args: string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [SEESAW_BIN, 'serve', '--http', '127.0.0.1:0', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`seesaw serve did not start in 60 s:\n${stderr}`)),
      60_000,
    );
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, baseUrl: match[1], stderr: () => stderr, exited });
      }
    });
    void exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`seesaw serve exited (${status}) before listening:\n${stderr}`));
    });
  });
}
