import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const inRepoTables = fileURLToPath(
  new URL('../../../../packages/planner/calibration/vidur', import.meta.url),
);

function seesaw(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'apps/cli/src/main.ts', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
}

describe('seesaw validate', () => {
  it('prints median, worst and denoised error per GPU and op, and exits 0 on the shipped profiles', () => {
    const run = seesaw(['validate', '--calibration', inRepoTables]);
    expect(run.stdout).toMatch(/a100\s+mlp_up_proj\s+\d+\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%/);
    expect(run.stdout).toMatch(/a100_dgx\s+all_reduce\/8w\/8dpn/);
    expect(run.stdout.split('\n').filter((line) => line.endsWith('> threshold'))).toEqual([]);
    expect(run.stdout).toContain('every denoised median error within 10.0%');
    expect(run.status).toBe(0);
  }, 60_000);

  it('names a directory without tables', () => {
    const run = seesaw(['validate', '--calibration', repoRoot]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('no compute/ tables');
  }, 60_000);
});
