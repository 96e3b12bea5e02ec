/**
 * One kv-store per host for a Seesaw replica spanning hosts: P2 -> T2 with one device on each of
 * two hosts (network namespaces where the machine allows it, else loopback), a host tier small
 * enough that the run switches (and swaps KV out and in) several times. Each device swaps
 * through its own host's store on the shared-memory path (copies out), and each store forwards
 * to the other the parts its device wrote that the other host's device owns under the other
 * layout; outputs equal a local single-device run. Each store prints what it stored and
 * forwarded when its job ends; the counts must match across the two hosts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  FIXTURE,
  ProcessGroup,
  runLocal,
  runToEnd,
  type Started,
  waitFor,
  writePrompts,
} from './remote-cluster-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';

const NUM_PROMPTS = 8;
const maxTokens = (i: number) => 3 + ((i * 5) % 9);

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('q', 239);

interface StoreCounts {
  puts: number;
  copiesOut: number;
  forwards: number;
  received: number;
}

const STORE_LINE =
  /kv-store \(local host\): (\d+) puts, (\d+) copies out stored; (\d+) parts \(\d+ bytes\) forwarded, (\d+) parts received/;

function storeCounts(agent: Started): StoreCounts | undefined {
  const match = STORE_LINE.exec(agent.stderr());
  if (!match) return undefined;
  return {
    puts: Number(match[1]),
    copiesOut: Number(match[2]),
    forwards: Number(match[3]),
    received: Number(match[4]),
  };
}

describe(`Seesaw replica over two hosts, one kv-store each (${hosts.where})`, () => {
  const group = new ProcessGroup();
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-cross-kv-'));
    hosts.createNetwork();
  });

  afterAll(async () => {
    await group.stopAll();
    hosts.destroyNetwork();
    rmSync(dir, { recursive: true, force: true });
  });

  it('P2 -> T2: each host store gets the parts of its own device, outputs equal the single-device run', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'seesaw-cross-host-kv-secret-padded-to-32-bytes\n', { mode: 0o600 });
    const input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, maxTokens, 5);
    const cluster = await hosts.startCluster(group, tokenFile, 1);
    const local = join(dir, 'local.jsonl');
    runLocal(input, local);
    const output = join(dir, 'seesaw.jsonl');
    const result = await runToEnd(
      group,
      [
        'run',
        '--cluster',
        cluster.url,
        '--token-file',
        tokenFile,
        '--prefill',
        'P2',
        '--decode',
        'T2',
        '--host-kv-memory',
        '256KiB',
        '--device-memory',
        '64MiB',
        '--model',
        FIXTURE,
        '--input',
        input,
        '--output',
        output,
        '--threads',
        '2',
      ],
      hosts.inA,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Requests: ${NUM_PROMPTS} ok, 0 errors`);
    const switches = /Phases: (\d+) switch/.exec(result.stdout);
    expect(Number(switches?.[1] ?? 0), result.stdout).toBeGreaterThanOrEqual(3);
    expect(choicesById(output)).toEqual(choicesById(local));

    // The job's stores print their counts when the job is released.
    const [a, b] = await waitFor('both hosts to print their kv-store counts', 15_000, () => {
      const counts = [storeCounts(cluster.hostA), storeCounts(cluster.hostB)];
      return counts.every((c) => c !== undefined) ? (counts as StoreCounts[]) : undefined;
    });
    const summary = JSON.stringify({ a, b });
    console.log(`kv-store counts per host: ${summary}`);
    // Each device wrote back through its own host's store on the shared-memory path.
    expect(a!.copiesOut, summary).toBeGreaterThan(0);
    expect(b!.copiesOut, summary).toBeGreaterThan(0);
    // Each store forwarded parts of its device's write-backs (at most one part per write-back:
    // a P2 stage's layers x the other T2 rank's heads, or a T2 rank's heads x the other stage's
    // layers; none where a write-back covers only parts the writer owns under both layouts),
    // and received exactly what the other one sent.
    expect(a!.forwards, summary).toBeGreaterThan(0);
    expect(b!.forwards, summary).toBeGreaterThan(0);
    expect(a!.forwards, summary).toBeLessThanOrEqual(a!.copiesOut + a!.puts - a!.received);
    expect(b!.forwards, summary).toBeLessThanOrEqual(b!.copiesOut + b!.puts - b!.received);
    expect(b!.received, summary).toBe(a!.forwards);
    expect(a!.received, summary).toBe(b!.forwards);
  }, 120_000);
});
