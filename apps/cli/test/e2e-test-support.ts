/**
 * Tests only: what the end-to-end tests of the `seesaw` command share: the binary, why engine
 * runs cannot happen here, the command run in a child process, Chrome-trace readers and a
 * device profile of two CPU-like workers.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChromeTrace } from '../src/chrome-trace.ts';
import { REPO_ROOT } from '../src/model-cache.ts';

export const SEESAW_BIN = join(REPO_ROOT, 'apps', 'cli', 'bin', 'seesaw.js');

/** Why the engine tests cannot run here (no CpuDevice yet, or the native kernels not built), or null. */
export function findEngineUnavailableReason(): Promise<string | null> {
  return import('@seesaw/gpu-actor').then(
    (module) => (typeof module.CpuDevice === 'function' ? null : '@seesaw/gpu-actor has no CpuDevice yet'),
    (error: unknown) =>
      `@seesaw/gpu-actor cannot be loaded: ${error instanceof Error ? error.message : String(error)}`,
  );
}

/**
 * The command in a child process, awaited (not spawnSync: a test worker blocked for many seconds
 * misses vitest's own messages on a loaded machine).
 */
export function runSeesaw(
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [SEESAW_BIN, ...args],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolvePromise({ status, stdout, stderr });
      },
    );
  });
}

export function readTrace(path: string): ChromeTrace {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The thread (track) names of process `pid`, in the order their metadata events appear. */
export function trackNames(trace: ChromeTrace, pid = 1): string[] {
  return trace.traceEvents
    .filter((event) => event.ph === 'M' && event.name === 'thread_name' && event.pid === pid)
    .map((event) => (event.args as { name: string }).name);
}

/** The complete ('X') events of process `pid`. */
export function completeEvents(trace: ChromeTrace, pid = 1) {
  return trace.traceEvents.filter((event) => event.ph === 'X' && event.pid === pid) as Array<{
    name: string;
    cat: string;
    ts: number;
    dur: number;
    tid: number;
    args: Record<string, number | string>;
  }>;
}

/** Two CPU-like device workers on one host, in the format `seesaw profile` writes. */
export const TWO_WORKER_PROFILE = {
  name: 'two test workers',
  numHosts: 1,
  devicesPerHost: 2,
  device: {
    name: 'cpu',
    memoryBytes: 2 ** 30,
    memoryBytesPerSecond: 10e9,
    matmulFlopsPerSecond: 50e9,
    matmulEfficiency: 1,
    memoryEfficiency: 1,
    attentionEfficiency: 1,
    memoryUtilization: 0.9,
    activationReserveBytes: 0,
    stepOverheadSeconds: 0.001,
    hostLink: { bytesPerSecond: 2e9, latencySeconds: 1e-5 },
  },
  intraHostLink: { bytesPerSecond: 4e9, latencySeconds: 1e-5 },
  interHostLink: { bytesPerSecond: 1e9, latencySeconds: 1e-4 },
  hostMemoryBytesPerDevice: 2 ** 30,
};
