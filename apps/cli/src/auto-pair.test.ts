import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseParallelConfig } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TWO_WORKER_PROFILE } from '../test/e2e-test-support.ts';
import { UsageError } from './args.ts';
import { isAutoPair, resolveAutoPair } from './auto-pair.ts';
import { checkSeesawPair } from './seesaw-flags.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

const REQUESTS = Array.from({ length: 8 }, (_, i) => ({
  promptTokenIds: Array.from({ length: 64 + 8 * i }, () => 1),
  sampling: { maxTokens: 16 },
}));

describe('isAutoPair', () => {
  it('is true only for both auto', () => {
    expect(isAutoPair({ prefill: 'auto', decode: 'auto' })).toBe(true);
    expect(isAutoPair({ prefill: 'P2', decode: 'T2' })).toBe(false);
    expect(isAutoPair({})).toBe(false);
  });

  it.each([
    [{ prefill: 'auto', decode: 'T2' }, '--prefill auto needs --decode auto'],
    [{ prefill: 'P2', decode: 'auto' }, '--prefill auto needs --decode auto'],
    [
      { prefill: 'P2', decode: 'T2', profile: 'p.json' },
      '--profile applies only to --prefill auto --decode auto',
    ],
  ])('refuses %j', (values, message) => {
    expect(() => isAutoPair(values)).toThrow(UsageError);
    expect(() => isAutoPair(values)).toThrow(message);
  });
});

describe.skipIf(!existsSync(FIXTURE))('resolveAutoPair', () => {
  let dir: string;
  let profilePath: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-auto-pair-'));
    profilePath = join(dir, 'profile.json');
    writeFileSync(profilePath, JSON.stringify(TWO_WORKER_PROFILE));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the simulated best pair of the profile's devices into the flags", async () => {
    const values: Record<string, string | boolean | undefined> = {
      prefill: 'auto',
      decode: 'auto',
      profile: profilePath,
    };
    const lines: string[] = [];
    await resolveAutoPair(values, FIXTURE, REQUESTS, (line) => lines.push(line));
    expect(lines).toHaveLength(1);
    if (values.config !== undefined) {
      // The planner found a static layout fastest: it runs as --config on the profile's devices.
      expect(values.prefill).toBeUndefined();
      expect(values.devices).toBe('2');
      const config = parseParallelConfig(String(values.config));
      expect(config.dp * config.tp * config.pp).toBe(2);
      expect(lines[0]).toMatch(
        new RegExp(`^auto: static ${values.config}, the planner's best overall \\(simulated`),
      );
      return;
    }
    const prefill = parseParallelConfig(String(values.prefill));
    const decode = parseParallelConfig(String(values.decode));
    expect(checkSeesawPair(prefill, decode)).toBeNull();
    expect(prefill.dp * prefill.tp * prefill.pp).toBe(2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^auto: prefill ${values.prefill}, decode ${values.decode}, the planner's best overall \\(simulated \\d+\\.\\d\\d total tokens/s on two test workers; best static`,
      ),
    );
  });

  it('needs --profile and a matching --devices', async () => {
    await expect(
      resolveAutoPair({ prefill: 'auto', decode: 'auto' }, FIXTURE, REQUESTS, () => {}),
    ).rejects.toThrow('needs --profile FILE');
    await expect(
      resolveAutoPair(
        { prefill: 'auto', decode: 'auto', profile: profilePath, devices: '4' },
        FIXTURE,
        REQUESTS,
        () => {},
      ),
    ).rejects.toThrow('--devices 4 does not match the 2 devices of');
  });
});
