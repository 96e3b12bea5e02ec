// `seesaw simulate` against `seesaw bench` on this machine's CPU device workers (planner
// validation, docs/planner-validation.md section (b)). Every bench is bracketed by two
// profiles of the machine (it is shared, so a profile is only good for the minute around it);
// simulate runs on both and predicts their mean. Everything lands in --out; --simulate-only
// re-simulates saved runs
// (after a change to the cost model) without benching again.
//
//   pnpm tsx packages/planner/bench/cpu-validation.ts --model /tmp/small-bf16 --out /tmp/val --reps 3
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface Case {
  label: string;
  devices: number;
  bench: string[];
  simulate: string[];
}

const WORKLOADS = [
  { name: '128/64', input: 128, output: 64 },
  { name: '512/16', input: 512, output: 16 },
  { name: '64/256', input: 64, output: 256 },
];

// Seesaw's prefill budget: the default 4096 makes a T2 prefill step of this CPU run past the
// device heartbeat deadline (10 s); 1024 in bench and simulate alike.
const SEESAW_BENCH = ['--prefill-token-budget', '1024'];
const SEESAW_SIMULATE = ['--max-num-batched-tokens', '1024'];

const CASES: Case[] = [
  { label: 'T2', devices: 2, bench: ['--config', 'T2'], simulate: ['--config', 'T2'] },
  { label: 'P2', devices: 2, bench: ['--config', 'P2'], simulate: ['--config', 'P2'] },
  { label: 'D2', devices: 2, bench: ['--config', 'D2'], simulate: ['--config', 'D2'] },
  { label: 'T1', devices: 1, bench: ['--config', 'T1'], simulate: ['--config', 'T1'] },
  {
    label: 'P2->T2',
    devices: 2,
    bench: ['--prefill', 'P2', '--decode', 'T2', '--host-kv-memory', '4GiB', ...SEESAW_BENCH],
    simulate: ['--prefill', 'P2', '--decode', 'T2', '--host-memory', '2GiB', ...SEESAW_SIMULATE],
  },
  {
    label: 'T2->P2',
    devices: 2,
    bench: ['--prefill', 'T2', '--decode', 'P2', '--host-kv-memory', '4GiB', ...SEESAW_BENCH],
    simulate: ['--prefill', 'T2', '--decode', 'P2', '--host-memory', '2GiB', ...SEESAW_SIMULATE],
  },
];

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    out: { type: 'string' },
    reps: { type: 'string', default: '3' },
    prompts: { type: 'string', default: '32' },
    cases: { type: 'string' },
    workloads: { type: 'string' },
    'simulate-only': { type: 'boolean', default: false },
  },
});
if (values.model === undefined || values.out === undefined) {
  throw new Error(
    'usage: cpu-validation.ts --model DIR --out DIR [--reps N] [--cases T2,P2] [--simulate-only]',
  );
}
const modelDir = values.model;
const outDir = values.out;
const reps = Number(values.reps);
const numPrompts = Number(values.prompts);
const cases = values.cases ? CASES.filter((c) => values.cases?.split(',').includes(c.label)) : CASES;
const workloads = values.workloads
  ? WORKLOADS.filter((w) => values.workloads?.split(',').includes(w.name))
  : WORKLOADS;
// T1 (one device) is benched on the first workload only: it is the slowest run.
const casesOf = (workload: string) => cases.filter((c) => c.label !== 'T1' || workload === WORKLOADS[0].name);

function seesaw(args: string[]): string {
  return execFileSync('pnpm', ['-s', 'seesaw', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

const fileOf = (rep: number, workload: string, label: string, what: string) =>
  join(outDir, `rep${rep}`, `${workload.replace('/', '-')}_${label.replace('->', '-to-')}.${what}.json`);

const profileOf = (rep: number, workload: string, label: string, when: 'before' | 'after') =>
  fileOf(rep, workload, label, `profile-${when}`);

/**
 * The machine is shared: a profile is only good for the minute around it. Every bench gets
 * the profile taken right before it (the previous bench's "after" one when it ran on as many
 * devices) and one right after; simulate runs on both and reports their mean.
 */
function benchRep(rep: number): void {
  mkdirSync(join(outDir, `rep${rep}`), { recursive: true });
  let last: { devices: number; path: string } | undefined;
  const profile = (devices: number, path: string) => {
    seesaw(['profile', '--out', path, '--devices', String(devices), '--threads', '1']);
    last = { devices, path };
  };
  for (const workload of workloads) {
    for (const c of casesOf(workload.name)) {
      const before = profileOf(rep, workload.name, c.label, 'before');
      if (last?.devices === c.devices) copyFileSync(last.path, before);
      else profile(c.devices, before);
      const json = fileOf(rep, workload.name, c.label, 'bench');
      const startedAt = new Date().toISOString();
      seesaw([
        'bench',
        '--model',
        modelDir,
        '--devices',
        String(c.devices),
        '--threads',
        String(c.devices),
        '--num-prompts',
        String(numPrompts),
        '--input-len',
        String(workload.input),
        '--output-len',
        String(workload.output),
        '--json',
        json,
        ...c.bench,
      ]);
      profile(c.devices, profileOf(rep, workload.name, c.label, 'after'));
      const result = JSON.parse(readFileSync(json, 'utf8'));
      writeFileSync(json, JSON.stringify({ ...result, startedAt }, null, 2));
      process.stdout.write(
        `rep ${rep} ${workload.name} ${c.label}: bench ${result.tokens_per_second.toFixed(1)} tok/s\n`,
      );
    }
  }
}

function simulateRep(rep: number): void {
  for (const workload of workloads) {
    for (const c of casesOf(workload.name)) {
      if (!existsSync(fileOf(rep, workload.name, c.label, 'bench'))) continue;
      const predictions = (['before', 'after'] as const).map((when) => {
        const json = fileOf(rep, workload.name, c.label, `simulate-${when}`);
        seesaw([
          'simulate',
          '--profile',
          profileOf(rep, workload.name, c.label, when),
          '--model-dir',
          modelDir,
          '--devices',
          String(c.devices),
          '--workload',
          `constant:${workload.input}:${workload.output}`,
          '--num-requests',
          String(numPrompts),
          // The static engine's default token budget.
          ...(c.bench[0] === '--config' ? ['--max-num-batched-tokens', '512'] : []),
          '--json',
          json,
          ...c.simulate,
        ]);
        return JSON.parse(readFileSync(json, 'utf8')).totalTokensPerSecond as number;
      });
      writeFileSync(
        fileOf(rep, workload.name, c.label, 'simulate'),
        JSON.stringify({ totalTokensPerSecond: (predictions[0] + predictions[1]) / 2, predictions }),
      );
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

for (let rep = 1; rep <= reps; rep++) {
  if (!values['simulate-only']) benchRep(rep);
  simulateRep(rep);
}

const rows: string[] = [
  '| config | workload | bench tok/s (median; runs) | simulate tok/s (median; runs) | error of the medians | per-run errors |',
  '|---|---|---|---|---|---|',
];
for (const workload of workloads) {
  for (const c of casesOf(workload.name)) {
    const bench: number[] = [];
    const sim: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      const b = fileOf(rep, workload.name, c.label, 'bench');
      const s = fileOf(rep, workload.name, c.label, 'simulate');
      if (!existsSync(b) || !existsSync(s)) continue;
      bench.push(JSON.parse(readFileSync(b, 'utf8')).tokens_per_second);
      sim.push(JSON.parse(readFileSync(s, 'utf8')).totalTokensPerSecond);
    }
    if (bench.length === 0) continue;
    const pct = (s: number, b: number) => `${s >= b ? '+' : ''}${((s / b - 1) * 100).toFixed(0)}%`;
    rows.push(
      `| ${c.label} | ${workload.name} | ${median(bench).toFixed(0)} (${bench.map((x) => x.toFixed(0)).join(', ')}) | ` +
        `${median(sim).toFixed(0)} (${sim.map((x) => x.toFixed(0)).join(', ')}) | ${pct(median(sim), median(bench))} | ` +
        `${sim.map((s, i) => pct(s, bench[i])).join(', ')} |`,
    );
  }
}
const table = rows.join('\n');
writeFileSync(join(outDir, 'table.md'), `${table}\n`);
process.stdout.write(`${table}\n`);
