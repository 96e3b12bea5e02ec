/**
 * Issue 13 item 6 (tokens): token files readable by group/other or shorter than 32 bytes are
 * refused with a clear error, and `seesaw token --out F` writes a fresh one with mode 0600 that
 * the coordinator then accepts. Runs the real CLI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT } from '../remote-cluster-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-token-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `seesaw coordinator` with the token file; a good file gets it to listen, so we stop it then. */
function coordinatorWith(tokenFile: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    process.execPath,
    [BIN, 'coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 15_000,
      killSignal: 'SIGTERM',
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(process.platform === 'win32')('token files', () => {
  it('item 6: refuses a token file readable by group/other', () => {
    const path = join(dir, 'open-token');
    writeFileSync(path, `${'k'.repeat(64)}\n`);
    chmodSync(path, 0o644);
    const result = coordinatorWith(path);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/readable or writable by group\/other \(mode 644\).*chmod 600/);
  });

  it('item 6: refuses a token shorter than 32 bytes', () => {
    const path = join(dir, 'short-token');
    writeFileSync(path, 'x\n', { mode: 0o600 });
    const result = coordinatorWith(path);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/1-byte token; at least 32 bytes/);
  });

  it('item 6: seesaw token --out writes a 0600 token the coordinator accepts, and never overwrites', () => {
    const path = join(dir, 'new-token');
    const made = spawnSync(process.execPath, [BIN, 'token', '--out', path], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(made.status).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = spawnSync(process.execPath, [BIN, 'token', '--out', path], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/cannot create .*EEXIST/);
  });

  it('item 6: the coordinator starts with a token made by seesaw token', async () => {
    const path = join(dir, 'good-token');
    expect(spawnSync(process.execPath, [BIN, 'token', '--out', path], { cwd: REPO_ROOT }).status).toBe(0);
    const child = spawn(
      process.execPath,
      [BIN, 'coordinator', '--listen', '127.0.0.1:0', '--token-file', path],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const firstLine = await new Promise<string>((resolve) => {
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(text);
      });
      child.on('exit', () => resolve(text));
    });
    child.kill('SIGTERM');
    expect(firstLine).toMatch(/seesaw coordinator listening on ws:\/\/127\.0\.0\.1:\d+/);
  }, 20_000);
});
