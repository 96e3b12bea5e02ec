import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const addonPath = fileURLToPath(new URL('../build/Release/seesaw_kernels.node', import.meta.url));

// A child process starts workers that call a kernel in a loop and terminates each one at a
// random moment, so the kernel's result meets a terminating environment. That once aborted
// the process ("terminate called after throwing an instance of 'Napi::Error'"), taking every
// other worker in it down too: a device actor dying must not kill its host.
const script = `
const { Worker } = require('node:worker_threads');
const body = \`
  const k = require(${JSON.stringify(addonPath)});
  const n = 1 << 16; const logits = new Float32Array(n * 4).fill(1);
  for (;;) k.argmaxRows(logits, 4, n);
\`;
(async () => {
  for (let i = 0; i < 120; i++) {
    const w = new Worker(body, { eval: true });
    await new Promise((r) => w.once('online', r));
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 15));
    await w.terminate();
  }
  console.log('survived');
})();
`;

describe('a worker terminated inside a kernel call', () => {
  it('ends that worker only, not the process', () => {
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 110_000 });
    expect(child.stderr).not.toContain('terminate called');
    expect(child.status).toBe(0);
    expect(child.stdout).toContain('survived');
  });
});
