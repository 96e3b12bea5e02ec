/**
 * Seesaw runs through the real `seesaw` command: --prefill/--decode on a phased local cluster
 * (outputs equal to the in-process engine's, re-shards traced) and bench --compare with a Seesaw
 * run. The tiny generated model and a few short prompts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  completeEvents,
  findEngineUnavailableReason,
  readTrace,
  runSeesaw,
  TWO_WORKER_PROFILE,
  trackNames,
} from '../test/e2e-test-support.ts';
import type { SuccessRecord } from './batch-output.ts';

const engineUnavailableReason = await findEngineUnavailableReason();
/** The Seesaw runs need the phased cluster engine of @seesaw/coordinator. */
const seesawUnavailableReason: string | null =
  engineUnavailableReason ??
  (await import('@seesaw/coordinator').then((module) =>
    typeof (module as Record<string, unknown>).SeesawClusterEngine === 'function'
      ? null
      : '@seesaw/coordinator has no SeesawClusterEngine yet',
  ));

function outputIds(path: string): Map<string, number[]> {
  const records = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SuccessRecord);
  return new Map(
    records.map((record) => [record.custom_id, record.response.body.choices[0].token_ids ?? []]),
  );
}

describe.skipIf(seesawUnavailableReason !== null)(
  `Seesaw runs${seesawUnavailableReason ? ` (skipped: ${seesawUnavailableReason})` : ''}`,
  () => {
    let dir: string;
    let modelDir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-phased-'));
      modelDir = join(dir, 'tiny');
      expect(
        (await runSeesaw(['gen-model', '--shape', 'tiny', '--seed', '5', '--out', modelDir])).status,
      ).toBe(0);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('run --prefill P2 --decode T2 gives the in-process greedy outputs and traces its re-shards', async () => {
      const inputPath = join(dir, 'prompts.jsonl');
      const lines = Array.from({ length: 5 }, (_, i) =>
        JSON.stringify({
          custom_id: `p${i}`,
          prompt: Array.from({ length: 8 + 5 * i }, (_, j) => ((i * 131 + j * 17) % 2000) + 3),
          max_tokens: 6 + i,
          temperature: 0,
          ignore_eos: true,
          return_token_ids: true,
        }),
      );
      writeFileSync(inputPath, `${lines.join('\n')}\n`);
      const reference = join(dir, 'reference.jsonl');
      const referenceRun = await runSeesaw([
        'run',
        '--model',
        modelDir,
        '--input',
        inputPath,
        '--output',
        reference,
        '--threads',
        '1',
      ]);
      expect(referenceRun.status).toBe(0);
      const phased = join(dir, 'phased.jsonl');
      const tracePath = join(dir, 'phased-trace.json');
      const reportPath = join(dir, 'phased.html');
      const result = await runSeesaw([
        ...['run', '--model', modelDir, '--input', inputPath, '--output', phased, '--threads', '2'],
        ...['--prefill', 'P2', '--decode', 'T2', '--host-kv-memory', '192KiB', '--reshard-route', 'p2p'],
        ...['--trace', tracePath, '--report', reportPath],
      ]);
      expect(result.stderr).not.toContain('seesaw: ');
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Requests: 5 ok, 0 errors');
      // 192 KiB of host KV is 3 slots of 16 tokens (4 layers x K,V x 4 KV heads x 32 x f32 per token):
      // a few prompts at a time, so prefill and decode take turns several times.
      const switches = Number(/Phases: (\d+) switch(es)?,/.exec(result.stdout)?.[1]);
      expect(switches).toBeGreaterThanOrEqual(3);
      expect(outputIds(phased)).toEqual(outputIds(reference));
      const trace = readTrace(tracePath);
      const events = completeEvents(trace);
      expect(events.some((event) => event.cat === 'reshard')).toBe(true);
      expect(events.some((event) => event.cat === 'prefill')).toBe(true);
      expect(events.some((event) => event.cat === 'decode')).toBe(true);
      expect(trackNames(trace)).toEqual(expect.arrayContaining(['replica 0', 'replica 0 reshard']));
      // Every device worker has its own track with the steps it took part in, in its role.
      const deviceTrack = trace.traceEvents.find(
        (e) =>
          e.ph === 'M' &&
          e.name === 'thread_name' &&
          (e.args as { name?: string }).name === 'replica 0 device 1',
      );
      expect(deviceTrack).toBeDefined();
      const deviceSteps = events.filter(
        (e) => e.tid === deviceTrack!.tid && (e.cat === 'prefill' || e.cat === 'decode'),
      );
      expect(deviceSteps.length).toBeGreaterThan(0);
      expect(String(deviceSteps[0].args.role)).toMatch(/^stage \d tp \d$/);
      const html = readFileSync(reportPath, 'utf8');
      expect(html.toLowerCase()).not.toContain('http');
      expect(html).toMatch(/<title>reshard /);
    });

    it('bench --compare seesaw:P2-T2,static:T2 --rounds 2 reports switches, phase times, host KV and each round', async () => {
      const jsonPath = join(dir, 'compare.json');
      const result = await runSeesaw([
        ...['bench', '--model', modelDir, '--dataset', 'random', '--num-prompts', '6', '--input-len', '20'],
        ...['--output-len', '8', '--threads', '2', '--host-kv-memory', '8MiB', '--reshard-route', 'host'],
        ...['--compare', 'seesaw:P2-T2,static:T2', '--rounds', '2', '--json', jsonPath],
      ]);
      expect(result.status).toBe(0);
      const [seesawRow, staticRow] = JSON.parse(readFileSync(jsonPath, 'utf8'));
      expect(seesawRow.run).toBe('seesaw:P2-T2');
      expect(seesawRow.num_requests).toBe(6);
      expect(seesawRow.num_switches).toBeGreaterThanOrEqual(1);
      expect(seesawRow.reshard_seconds).toBeGreaterThan(0);
      expect(result.stderr).toMatch(/reshard prefill P2 -> decode T2: .* moved \(p2p 0 B, host /);
      expect(seesawRow.host_kv_memory_bytes).toBe(8 * 1024 ** 2);
      expect(staticRow.num_switches).toBe(0);
      expect(staticRow.reshard_seconds).toBe(0);
      expect(result.stdout).toMatch(/^Phase switches\s+[1-9]\d*\s+0$/m);
      // Two rounds, the second in rotated order; each column shows one of its own runs.
      expect(result.stderr).toContain('compare: round 2/2, run 1/2: static:T2');
      for (const row of [seesawRow, staticRow]) {
        expect(row.tokens_per_second_by_round).toHaveLength(2);
        expect(row.tokens_per_second_by_round).toContain(row.tokens_per_second);
      }
      expect(staticRow.share_of_best_static_by_round).toEqual([1, 1]);
      const shares = seesawRow.tokens_per_second_by_round.map(
        (tps: number, round: number) => tps / staticRow.tokens_per_second_by_round[round],
      );
      expect(seesawRow.share_of_best_static_by_round).toEqual(shares);
      expect(seesawRow.share_of_best_static_median_of_rounds).toBe(Math.min(...shares));
      expect(result.stdout).toMatch(/^Share of best static, median of rounds\s+\d\.\d\dx\s+1\.00x$/m);
    });

    it('bench --prefill auto --decode auto runs the planner overall best for a measured profile', async () => {
      const profilePath = join(dir, 'profile.json');
      writeFileSync(profilePath, JSON.stringify(TWO_WORKER_PROFILE));
      const result = await runSeesaw([
        ...['bench', '--model', modelDir, '--dataset', 'random', '--num-prompts', '4', '--input-len', '24'],
        ...['--output-len', '4', '--threads', '2', '--host-kv-memory', '4MiB'],
        ...['--prefill', 'auto', '--decode', 'auto', '--profile', profilePath],
      ]);
      expect(result.status).toBe(0);
      // auto runs the planner's overall best: a pair, or a static layout when no pair beats it.
      const pair = /auto: prefill (\S+), decode (\S+), the planner's best overall/.exec(result.stderr);
      const staticBest = /auto: static (\S+), the planner's best overall/.exec(result.stderr);
      expect(pair ?? staticBest).not.toBeNull();
      if (pair !== null) {
        expect(result.stderr).toContain(
          `bench: running on prefill ${pair[1]}, decode ${pair[2]} on 2 device workers`,
        );
        expect(result.stdout).toMatch(/^Seesaw: \d+ phase switch/m);
      }
    });
  },
);
