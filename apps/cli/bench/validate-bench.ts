/**
 * `pnpm bench:validate`: the planner against the engine on this machine, in one process and one
 * sitting. For each workload and configuration: `seesaw profile` (the machine is shared, so a
 * profile is only good for the minute around it), then `seesaw bench`, then `seesaw simulate` on
 * that profile, printing the simulator's error at once; at the end a table and whether the
 * simulator ranks the configurations of each workload as the bench did.
 *
 *   pnpm bench:validate                                  # small, 32 prompts, T2 P2 D2 P2->T2,
 *                                                        # 128/64 512/16 64/256 (tens of minutes)
 *   pnpm bench:validate --shape tiny --prompts 4 --workloads 128/64 --cases T2,P2 --quick-profile
 *                                                        # a smoke run (a minute or two)
 *
 * Figures land in --out (default: a fresh temporary directory).
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { shapeNames } from '../src/commands/gen-model.ts';
import { main } from '../src/main.ts';
import { ensureCachedModel } from '../src/model-cache.ts';

interface ValidationCase {
  label: string;
  devices: number;
  bench: string[];
  simulate: string[];
}

const WORKLOADS: Record<string, { input: number; output: number }> = {
  '128/64': { input: 128, output: 64 },
  '512/16': { input: 512, output: 16 },
  '64/256': { input: 64, output: 256 },
};

// Seesaw's prefill budget: the default 4096 makes a T2 prefill step of this CPU run past the
// device heartbeat deadline (10 s); 1024 in bench and simulate alike. Static runs: the static
// engine's default budget, 512.
const CASES: Record<string, ValidationCase> = Object.fromEntries(
  [
    ...['T2', 'P2', 'D2'].map((config) => ({
      label: config,
      devices: 2,
      bench: ['--config', config],
      simulate: ['--config', config, '--max-num-batched-tokens', '512'],
    })),
    {
      label: 'P2->T2',
      devices: 2,
      bench: [
        '--prefill',
        'P2',
        '--decode',
        'T2',
        '--host-kv-memory',
        '4GiB',
        '--prefill-token-budget',
        '1024',
      ],
      simulate: [
        '--prefill',
        'P2',
        '--decode',
        'T2',
        '--host-memory',
        '2GiB',
        '--max-num-batched-tokens',
        '1024',
      ],
    },
  ].map((c) => [c.label, c]),
);

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'small' },
    prompts: { type: 'string', default: '32' },
    cases: { type: 'string', default: Object.keys(CASES).join(',') },
    workloads: { type: 'string', default: Object.keys(WORKLOADS).join(',') },
    out: { type: 'string' },
    'quick-profile': { type: 'boolean', default: false },
  },
});
const pick = <T>(table: Record<string, T>, names: string, what: string): [string, T][] =>
  names.split(',').map((name) => {
    const item = table[name];
    if (item === undefined)
      throw new Error(`unknown ${what} '${name}' (known: ${Object.keys(table).join(', ')})`);
    return [name, item];
  });
const cases = pick(CASES, values.cases, 'case').map(([, c]) => c);
const workloads = pick(WORKLOADS, values.workloads, 'workload');
const numPrompts = Number(values.prompts);
const outDir = values.out ?? mkdtempSync(join(tmpdir(), 'seesaw-validate-'));
mkdirSync(outDir, { recursive: true });

async function seesaw(args: string[]): Promise<void> {
  const status = await main(args);
  if (status !== 0) throw new Error(`seesaw ${args.join(' ')} exited ${status}`);
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const percent = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

const shape = shapeNames().find((name) => name === values.shape);
if (shape === undefined)
  throw new Error(`unknown --shape '${values.shape}' (known: ${shapeNames().join(', ')})`);
const modelDir = await ensureCachedModel({ shape, dtype: 'bf16', seed: 0 }, (line) =>
  process.stderr.write(`${line}\n`),
);
interface Row {
  workload: string;
  label: string;
  bench: number;
  simulate: number;
  /**
   * (bench elapsed - simulated elapsed) / simulated steps, ms: the per-step time the model
   * leaves out (coordinator, messaging, kv-store, sampling), the figure to model next.
   */
  gapPerStepMs: number;
  /**
   * The 1-minute load average when the profile started and when the bench ended: the profile
   * is only good for the load it saw, so a cell whose load moved is a noisy one.
   */
  loadAtProfile: number;
  loadAfterBench: number;
}
const rows: Row[] = [];
for (const [name, workload] of workloads) {
  for (const c of cases) {
    const stem = join(outDir, `${name.replace('/', '-')}_${c.label.replace('->', '-to-')}`);
    const profile = `${stem}.profile.json`;
    const loadAtProfile = loadavg()[0];
    await seesaw([
      'profile',
      '--out',
      profile,
      '--devices',
      String(c.devices),
      '--threads',
      '1',
      ...(values['quick-profile'] ? ['--quick'] : []),
    ]);
    const benchJson = `${stem}.bench.json`;
    await seesaw([
      'bench',
      '--model',
      modelDir,
      '--devices',
      String(c.devices),
      '--threads',
      String(c.devices),
      '--num-prompts',
      String(numPrompts),
      '--dataset',
      'random',
      '--input-len',
      String(workload.input),
      '--output-len',
      String(workload.output),
      '--json',
      benchJson,
      ...c.bench,
    ]);
    const loadAfterBench = loadavg()[0];
    const simulateJson = `${stem}.simulate.json`;
    await seesaw([
      'simulate',
      '--profile',
      profile,
      '--model-dir',
      modelDir,
      '--devices',
      String(c.devices),
      '--workload',
      `constant:${workload.input}:${workload.output}`,
      '--num-requests',
      String(numPrompts),
      '--json',
      simulateJson,
      ...c.simulate,
    ]);
    const bench = readJson(benchJson);
    const simulated = readJson(simulateJson);
    const row: Row = {
      workload: name,
      label: c.label,
      bench: bench.tokens_per_second,
      simulate: simulated.totalTokensPerSecond,
      gapPerStepMs:
        ((bench.elapsed_time - simulated.elapsedSeconds) * 1000) / Math.max(1, simulated.numSteps),
      loadAtProfile,
      loadAfterBench,
    };
    rows.push(row);
    process.stdout.write(
      `validate ${name} ${c.label}: bench ${row.bench.toFixed(1)} tok/s, simulate ${row.simulate.toFixed(1)} tok/s, ` +
        `error ${percent(row.simulate / row.bench - 1)}, unmodelled ${row.gapPerStepMs.toFixed(2)} ms per step, ` +
        `load ${row.loadAtProfile.toFixed(1)} -> ${row.loadAfterBench.toFixed(1)}\n`,
    );
  }
}

const lines = [
  '| workload | config | bench tok/s | simulate tok/s | error | unmodelled ms/step | load |',
  '|---|---|---|---|---|---|---|',
];
for (const row of rows)
  lines.push(
    `| ${row.workload} | ${row.label} | ${row.bench.toFixed(1)} | ${row.simulate.toFixed(1)} | ${percent(row.simulate / row.bench - 1)} | ${row.gapPerStepMs.toFixed(2)} | ${row.loadAtProfile.toFixed(1)} -> ${row.loadAfterBench.toFixed(1)} |`,
  );
const ranking = (workload: string, key: 'bench' | 'simulate') =>
  rows
    .filter((row) => row.workload === workload)
    .sort((a, b) => b[key] - a[key])
    .map((row) => row.label)
    .join(' > ');
for (const [name] of workloads) {
  const bench = ranking(name, 'bench');
  const simulate = ranking(name, 'simulate');
  lines.push(
    '',
    `${name}: bench ranks ${bench}; simulate ${simulate}${bench === simulate ? ' (same)' : ' (DIFFERENT)'}`,
  );
}
const worst = Math.max(...rows.map((row) => Math.abs(row.simulate / row.bench - 1)));
lines.push(`worst error ${(worst * 100).toFixed(1)}% (goal: every cell within 10%); figures in ${outDir}`);
process.stdout.write(`\n${lines.join('\n')}\n`);
