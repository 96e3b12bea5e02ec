/**
 * The end-to-end matrix: `seesaw bench` for the small and medium shapes (bf16) at
 * batch 1, 8 and 32, prompt 128, output 64, 2 threads, each in its own process (so peak RSS
 * belongs to that run), printed as one table. Run: pnpm bench:e2e [--shapes small,medium]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'small,medium' },
    batches: { type: 'string', default: '1,8,32' },
  },
});
const shapes = values.shapes.split(',');
const batches = values.batches.split(',').map(Number);
const cli = new URL('../bin/seesaw.js', import.meta.url).pathname;
const outDir = mkdtempSync(join(tmpdir(), 'seesaw-e2e-'));

console.log(
  '| model | batch | total tok/s | output tok/s | prefill tok/s | decode-only tok/s | peak RSS / (weights + KV) |',
);
console.log('|---|---|---|---|---|---|---|');
for (const shape of shapes) {
  for (const batch of batches) {
    const json = join(outDir, `${shape}-${batch}.json`);
    const args = ['bench', '--shape', shape, '--dataset', 'random', '--num-prompts', String(batch)];
    args.push('--input-len', '128', '--output-len', '64', '--threads', '2', '--json', json);
    const run = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (run.status !== 0) throw new Error(`seesaw ${args.join(' ')} exited with ${run.status}`);
    const r = JSON.parse(readFileSync(json, 'utf8'));
    const memoryRatio = r.peak_rss_bytes / (r.weight_bytes + r.kv_cache_bytes);
    console.log(
      `| ${shape} | ${batch} | ${r.tokens_per_second.toFixed(1)} | ${r.output_tokens_per_second.toFixed(1)} | ` +
        `${r.prefill_tokens_per_second.toFixed(1)} | ${r.decode_tokens_per_second.toFixed(1)} | ${memoryRatio.toFixed(2)} |`,
    );
  }
}
