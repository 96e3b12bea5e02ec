/**
 * --trace, --report and bench --compare on static engines through the real `seesaw` command:
 * the in-process device and T2/P2 local clusters on the tiny generated model, few short prompts.
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
  trackNames,
} from '../test/e2e-test-support.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

describe.skipIf(engineUnavailableReason !== null)(
  `trace, report and compare on static engines${engineUnavailableReason ? ` (skipped: ${engineUnavailableReason})` : ''}`,
  () => {
    let dir: string;
    let modelDir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-seesaw-'));
      modelDir = join(dir, 'tiny');
      const result = await runSeesaw(['gen-model', '--shape', 'tiny', '--seed', '4', '--out', modelDir]);
      expect(result.status).toBe(0);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('run --trace --report on the in-process device writes a Chrome trace and a self-contained page', async () => {
      const inputPath = join(dir, 'prompts.jsonl');
      const lines = [1, 2, 3].map((i) =>
        JSON.stringify({
          custom_id: `p${i}`,
          prompt: [1, 10 + i, 20 + i, 30 + i],
          max_tokens: 4,
          ignore_eos: true,
        }),
      );
      writeFileSync(inputPath, `${lines.join('\n')}\n`);
      const tracePath = join(dir, 'run-trace.json');
      const reportPath = join(dir, 'out', 'run-report.html');
      const result = await runSeesaw([
        ...['run', '--model', modelDir, '--input', inputPath, '--output', join(dir, 'run.jsonl')],
        ...['--threads', '1', '--trace', tracePath, '--report', reportPath],
      ]);
      expect(result.status).toBe(0);
      expect(result.stderr).toContain(`wrote the report to ${reportPath}`);
      const trace = readTrace(tracePath);
      expect(trackNames(trace)).toEqual(['engine 0']);
      const steps = completeEvents(trace);
      // One prefill step for the three prompts, then decode steps; every step's tokens recorded.
      expect(steps[0].cat).toBe('prefill');
      expect(steps.every((event) => event.dur >= 0 && typeof event.args.numTokens === 'number')).toBe(true);
      const tokens = steps.reduce((sum, event) => sum + Number(event.args.numTokens), 0);
      // 3 prompts of 4 tokens, then 3 more decode positions each (the 4th token is sampled, not fed back).
      expect(tokens).toBe(3 * 4 + 3 * 3);
      const html = readFileSync(reportPath, 'utf8');
      expect(html.toLowerCase()).not.toContain('http');
      expect(html).toContain('aria-label="phase timeline"');
      expect(html).toContain('<td>Output tokens</td><td>12</td>');
    });

    it('bench --compare runs static layouts side by side with --json, --trace and --report', async () => {
      const jsonPath = join(dir, 'compare.json');
      const tracePath = join(dir, 'compare-trace.json');
      const reportPath = join(dir, 'compare.html');
      const result = await runSeesaw([
        ...['bench', '--model', modelDir, '--dataset', 'random', '--num-prompts', '4', '--input-len', '16'],
        ...['--output-len', '6', '--threads', '2', '--compare', 'static:T2,static:P2'],
        ...['--json', jsonPath, '--trace', tracePath, '--report', reportPath],
      ]);
      expect(result.status).toBe(0);
      const header = result.stdout.split('\n')[0];
      expect(header).toMatch(/^\s+static:T2\s+static:P2$/);
      expect(result.stdout).toMatch(/^Total tokens\/s\s+\d+\.\d\d\s+\d+\.\d\d$/m);
      expect(result.stdout).toMatch(/^Phase switches\s+0\s+0$/m);
      expect(result.stdout).toMatch(/^Speed-up vs static:T2\s+1\.00x\s+\d+\.\d\dx$/m);
      const rows = JSON.parse(readFileSync(jsonPath, 'utf8'));
      expect(rows.map((row: { run: string }) => row.run)).toEqual(['static:T2', 'static:P2']);
      for (const row of rows) {
        expect(row.num_requests).toBe(4);
        expect(row.tokens_per_second).toBeCloseTo((4 * 16 + 4 * 6) / row.elapsed_time, 6);
        expect(row.peak_device_memory_bytes).toBeGreaterThan(0);
      }
      const trace = readTrace(tracePath);
      const processNames = trace.traceEvents
        .filter((event) => event.name === 'process_name')
        .map((event) => (event.args as { name: string }).name);
      expect(processNames).toEqual(['static:T2', 'static:P2']);
      expect(trackNames(trace, 1)).toEqual(['engine 0']);
      // P2: one engine per replica; its two steps in flight are drawn on its one track.
      expect(trackNames(trace, 2)).toEqual(['engine 0']);
      for (const pid of [1, 2]) {
        const tokens = completeEvents(trace, pid).reduce(
          (sum, event) => sum + Number(event.args.numTokens),
          0,
        );
        expect(tokens).toBe(4 * 16 + 4 * 5);
      }
      const html = readFileSync(reportPath, 'utf8');
      expect(html.toLowerCase()).not.toContain('http');
      expect(html).toContain('<h2>static:T2</h2>');
      expect(html).toContain('<h2>static:P2</h2>');
    });

    it('bench --compare reports a run that cannot start, keeps the others and exits 1', async () => {
      // 6 MiB per device: the 8 MiB tiny model fits only split over two devices.
      const result = await runSeesaw([
        ...['bench', '--model', modelDir, '--dataset', 'random', '--num-prompts', '2', '--input-len', '8'],
        ...[
          '--output-len',
          '2',
          '--threads',
          '2',
          '--device-memory',
          '6MiB',
          '--compare',
          'static:D1,static:T2',
        ],
      ]);
      expect(result.status).toBe(1);
      expect(result.stdout.split('\n')[0]).toMatch(/^\s+static:T2$/);
      expect(result.stderr).toContain('compare: 1 of 2 runs failed and are not in the table:');
      expect(result.stderr).toMatch(/static:D1: .*do not fit the device memory/);
    });
  },
);
