/**
 * `seesaw cluster-run FILE`, which starts a coordinator and local host agents as child processes
 * from a cluster script and submits its job (as `run --cluster` would, see cluster-job.ts):
 *
 *   { "tokenFile": "token", "listen": "127.0.0.1:0",
 *     "hosts": [{ "name": "a", "devices": 1 }, { "name": "b", "devices": 1 }],
 *     "config": "D2", "threadsPerDevice": 1,
 *     "job": { "model": "models/tiny", "input": "prompts.jsonl", "output": "results.jsonl" } }
 *
 * A Seesaw job gives "prefill": "P2", "decode": "T2" and "hostKvMemory": "1GiB" (each host's KV
 * tier) instead of "config". A static job may give "hostKvMemory" too (preemption may swap
 * there), and either kind "kvDtype": "auto" | "bf16" | "f16" | "f32".
 *
 * Relative paths are relative to the script's directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CoordinatorHealth } from '@seesaw/coordinator';
import { formatParallelConfig, parseParallelConfig } from '@seesaw/model';
import { parseFlags, UsageError } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { formatRunSummary } from '../run-summary.ts';
import { readSeesawSettings } from '../seesaw-flags.ts';
import { type ClusterJobSettings, remoteSessionOpener } from './cluster-job.ts';
import { type ClusterScript, readClusterScript } from './cluster-script-file.ts';
import { readTokenFile } from './coordinator.ts';
import { runJob } from './run-job.ts';

/** The script's job as `run --cluster` flags would give it. */
function scriptJobSettings(script: ClusterScript, url: string, token: string): ClusterJobSettings {
  const seesaw =
    script.seesaw && readSeesawSettings({ prefill: script.seesaw.prefill, decode: script.seesaw.decode });
  const parallel = seesaw ? seesaw.prefill : parseParallelConfig(script.config!);
  const cluster: ClusterJobSettings = { url, token, parallelism: formatParallelConfig(parallel) };
  if (seesaw) cluster.seesaw = seesaw;
  if (script.threadsPerDevice !== undefined) cluster.numThreadsPerDevice = script.threadsPerDevice;
  return cluster;
}

const BIN = fileURLToPath(new URL('../../bin/seesaw.js', import.meta.url));

/** Spawns `seesaw ARGS` with stderr passed through, prefixed with `label`. */
function spawnSeesaw(args: string[], label: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (line) =>
    process.stderr.write(`[${label}] ${line}\n`),
  );
  return child;
}

/** The coordinator's URL from its first stdout line. */
async function coordinatorUrl(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`coordinator exited with code ${code} before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const match = /listening on (ws:\/\/\S+)/.exec(line);
      if (match) return match[1]!;
    }
    throw new Error('coordinator closed its output before listening');
  })();
  return Promise.race([listening, exited]);
}

/** Polls /healthz until `names` have all joined. */
async function waitForHosts(url: string, names: string[], timeoutMs: number): Promise<void> {
  const healthUrl = `${url.replace(/^ws/, 'http')}/healthz`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const health = (await (await fetch(healthUrl)).json()) as CoordinatorHealth;
      const joined = new Set(health.hosts.map((h) => h.name));
      if (names.every((name) => joined.has(name))) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline)
      throw new Error(`hosts ${names.join(', ')} did not all join within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export const CLUSTER_RUN_FLAGS = commandFlagSpec('cluster-run');

/** `seesaw cluster-run FILE`. */
export async function clusterRunCommand(argv: string[]): Promise<number> {
  const [file, ...rest] = argv;
  if (file === undefined || file.startsWith('-'))
    throw new UsageError('cluster-run needs a cluster script FILE');
  parseFlags('cluster-run', rest, CLUSTER_RUN_FLAGS);
  const script = readClusterScript(file);
  const token = readTokenFile(script.tokenFile);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const children: ChildProcess[] = [];
  try {
    const coordinator = spawnSeesaw(
      ['coordinator', '--listen', script.listen, '--token-file', script.tokenFile],
      'coordinator',
    );
    children.push(coordinator);
    const url = await coordinatorUrl(coordinator);
    log(`cluster-run: coordinator at ${url}`);
    for (const host of script.hosts) {
      const args = [
        'worker',
        '--connect',
        url,
        '--devices',
        String(host.devices),
        '--token-file',
        script.tokenFile,
      ];
      children.push(spawnSeesaw([...args, '--name', host.name], host.name));
    }
    await waitForHosts(
      url,
      script.hosts.map((h) => h.name),
      60_000,
    );
    const cluster = scriptJobSettings(script, url, token);
    const summary = await runJob({
      ...(script.seesaw ? { hostKvBytes: script.seesaw.hostKvBytes } : {}),
      ...(script.hostKvBytes !== undefined ? { hostKvBytes: script.hostKvBytes } : {}),
      ...(script.kvDtype !== undefined ? { kvDtype: script.kvDtype } : {}),
      modelDir: script.job.model,
      inputPath: script.job.input,
      outputPath: script.job.output,
      progressStream: process.stderr,
      log,
      openSession: remoteSessionOpener(cluster, script.job.output, log),
    });
    process.stdout.write(formatRunSummary(summary));
    return 0;
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}
