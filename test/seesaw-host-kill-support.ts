/**
 * The run both cross-host Seesaw failure tests make: `run --cluster` with a Seesaw pair from
 * namespace A over two host agents, host-b's agent killed with SIGKILL once some results are
 * written, then the checks every such run must pass: exit 0, every request ok, the completions
 * of a local single-device run, each written once. Each test then checks how its coordinator
 * recovered (requeue or re-plan).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  choicesById,
  FIXTURE,
  type ProcessGroup,
  runLocal,
  type Started,
  waitFor,
  writePrompts,
} from './remote-cluster-support.ts';
import type { TwoHostPlacement } from './two-host-cluster-support.ts';

export interface HostKillRun {
  group: ProcessGroup;
  hosts: TwoHostPlacement;
  url: string;
  tokenFile: string;
  hostB: Started;
  dir: string;
  numPrompts: number;
  promptSeed: number;
  prefill: string;
  decode: string;
  /** Results written before host-b is killed (more than this many lines in the output). */
  resultsBeforeKill: number;
}

/** Runs the job, kills host-b mid-run, checks the outputs; returns the finished client. */
export async function runSeesawKillingHostB(run: HostKillRun): Promise<Started> {
  const input = join(run.dir, 'prompts.jsonl');
  // Long outputs, few sequences at a time: many steps (and switches), so the kill lands mid-run.
  writePrompts(input, run.numPrompts, () => 40, run.promptSeed);
  const localOutput = join(run.dir, 'local.jsonl');
  runLocal(input, localOutput);
  const output = join(run.dir, 'cluster.jsonl');
  // The client runs in A with the coordinator: only host-b goes away.
  const running = run.group.start(
    [
      'run',
      ...['--cluster', run.url, '--token-file', run.tokenFile],
      ...[
        '--prefill',
        run.prefill,
        '--decode',
        run.decode,
        '--max-num-seqs',
        '2',
        '--prefill-token-budget',
        '32',
      ],
      ...['--host-kv-memory', '1MiB', '--device-memory', '64MiB', '--threads', '4'],
      ...['--model', FIXTURE, '--input', input, '--output', output],
    ],
    run.hosts.inA,
  );
  await waitFor(`${run.resultsBeforeKill} results before the kill`, 60_000, () => {
    if (running.child.exitCode !== null) throw new Error(`run ended early: ${running.stderr()}`);
    const lines = existsSync(output) ? readFileSync(output, 'utf8').split('\n').length : 0;
    return lines > run.resultsBeforeKill ? true : undefined;
  });
  run.hostB.child.kill('SIGKILL');
  expect(await running.exited, running.stderr()).toBe(0);
  expect(running.stdout()).toContain(`Requests: ${run.numPrompts} ok, 0 errors`);
  expect(choicesById(output)).toEqual(choicesById(localOutput));
  // Each request once: the results written before the kill are not written again.
  expect(readFileSync(output, 'utf8').trim().split('\n')).toHaveLength(run.numPrompts);
  return running;
}
