/** Flag and script parsing of the many-machines commands (no processes, no network). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../apps/cli/src/args.ts';
import { readClusterJobFlags } from '../apps/cli/src/commands/cluster-job.ts';
import { readClusterScript } from '../apps/cli/src/commands/cluster-script-file.ts';
import { parseListenAddress, readTokenFile } from '../apps/cli/src/commands/coordinator.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-remote-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

describe('coordinator and worker flags', () => {
  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('10.1.2.3:7070')).toEqual({ host: '10.1.2.3', port: 7070 });
    expect(parseListenAddress(':9000')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(parseListenAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    for (const bad of ['localhost', '1.2.3.4:99999', 'a:b', '']) {
      expect(() => parseListenAddress(bad)).toThrow(UsageError);
    }
  });

  it('reads the token without surrounding whitespace and refuses an empty or missing file', () => {
    const secret = 's3cret-'.padEnd(40, 'x');
    expect(readTokenFile(file('token', `  ${secret}\n`))).toBe(secret);
    expect(() => readTokenFile(file('empty', ' \n'))).toThrow(/is empty/);
    expect(() => readTokenFile(join(dir, 'absent'))).toThrow(/cannot read/);
  });
});

describe('run --cluster flags', () => {
  const tok = 'tok-'.padEnd(32, 'k');
  const token = file('cluster-token', `${tok}\n`);
  const base = { cluster: 'ws://10.0.0.1:7000', 'token-file': token };

  it("takes a Seesaw job's layout from --prefill, its threads over the same devices", () => {
    const flags = { ...base, prefill: 'P2', decode: 'T2', 'host-kv-memory': '1MiB', threads: '4' };
    const settings = readClusterJobFlags(flags);
    expect(settings.parallelism).toBe('P2');
    expect(settings.numThreadsPerDevice).toBe(2);
    expect(settings.seesaw).toMatchObject({
      prefill: { dp: 1, tp: 1, pp: 2 },
      decode: { dp: 1, tp: 2, pp: 1 },
    });
    expect(() => readClusterJobFlags({ ...flags, 'host-kv-memory': undefined })).toThrow(/--host-kv-memory/);
  });

  it('takes the layout from --config, splits --threads over its devices', () => {
    expect(readClusterJobFlags({ ...base, config: 'D2', threads: '4', 'device-memory': '64MiB' })).toEqual({
      url: 'ws://10.0.0.1:7000',
      token: tok,
      parallelism: 'D2',
      numThreadsPerDevice: 2,
      deviceMemoryBytes: 64 << 20,
    });
    expect(readClusterJobFlags({ ...base, config: 'D2T2', devices: '4' }).parallelism).toBe('D2T2');
  });

  it('refuses what does not apply or does not match', () => {
    expect(() => readClusterJobFlags({ ...base })).toThrow(/--cluster needs --config/);
    expect(() => readClusterJobFlags({ ...base, config: 'D2', devices: '3' })).toThrow(/does not match/);
    expect(() => readClusterJobFlags({ ...base, config: 'D2', 'kv-cache-memory': '1GiB' })).toThrow(
      /--kv-cache-memory does not apply/,
    );
    expect(() => readClusterJobFlags({ ...base, cluster: 'http://x:1', config: 'D1' })).toThrow(/ws:\/\//);
  });
});

describe('cluster scripts', () => {
  it('resolves paths against the script and fills defaults', () => {
    const path = file(
      'ok.json',
      JSON.stringify({
        tokenFile: 'token',
        hosts: [{ name: 'a', devices: 2 }],
        config: 'D2',
        job: { model: '/models/tiny', input: 'in.jsonl', output: 'out/results.jsonl' },
      }),
    );
    expect(readClusterScript(path)).toEqual({
      tokenFile: join(dir, 'token'),
      listen: '127.0.0.1:0',
      hosts: [{ name: 'a', devices: 2 }],
      config: 'D2',
      job: { model: '/models/tiny', input: join(dir, 'in.jsonl'), output: join(dir, 'out/results.jsonl') },
    });
  });

  it("reads a Seesaw job: both layouts and each host's KV tier instead of config", () => {
    const job = { model: '/models/tiny', input: '/in.jsonl', output: '/out.jsonl' };
    const path = file(
      'seesaw.json',
      JSON.stringify({
        tokenFile: '/token',
        hosts: [{ name: 'a', devices: 2 }],
        prefill: 'P2',
        decode: 'T2',
        hostKvMemory: '1MiB',
        job,
      }),
    );
    expect(readClusterScript(path)).toEqual({
      tokenFile: '/token',
      listen: '127.0.0.1:0',
      hosts: [{ name: 'a', devices: 2 }],
      seesaw: { prefill: 'P2', decode: 'T2', hostKvBytes: 1 << 20 },
      job,
    });
    const seesaw = { tokenFile: 't', hosts: [{ name: 'a', devices: 2 }], prefill: 'P2', decode: 'T2', job };
    const cases: Array<[unknown, RegExp]> = [
      [seesaw, /hostKvMemory/],
      [{ ...seesaw, hostKvMemory: 'lots' }, /hostKvMemory: /],
      [{ ...seesaw, hostKvMemory: '1MiB', config: 'D2' }, /not both/],
      [{ ...seesaw, hostKvMemory: '1MiB', kvDtype: 'fp8' }, /kvDtype must be one of auto, bf16, f16, f32/],
    ];
    cases.forEach(([script, reason], i) => {
      expect(() => readClusterScript(file(`bad-seesaw-${i}.json`, JSON.stringify(script)))).toThrow(reason);
    });
  });

  it("a static job's host KV tier and either job's KV dtype", () => {
    const job = { model: '/models/tiny', input: '/in.jsonl', output: '/out.jsonl' };
    const base = { tokenFile: '/token', hosts: [{ name: 'a', devices: 2 }], job };
    const read = (name: string, extra: object) =>
      readClusterScript(file(name, JSON.stringify({ ...base, ...extra })));
    expect(read('static-kv.json', { config: 'D2', hostKvMemory: '2MiB', kvDtype: 'bf16' })).toMatchObject({
      config: 'D2',
      hostKvBytes: 2 << 20,
      kvDtype: 'bf16',
    });
    expect(
      read('seesaw-kv.json', { prefill: 'P2', decode: 'T2', hostKvMemory: '1MiB', kvDtype: 'auto' }),
    ).toMatchObject({ seesaw: { hostKvBytes: 1 << 20 }, kvDtype: 'auto' });
    expect(() => read('static-bad-kv.json', { config: 'D2', hostKvMemory: 'lots' })).toThrow(
      /hostKvMemory: /,
    );
  });

  it('names what is wrong', () => {
    const job = { model: 'm', input: 'i', output: 'o' };
    const cases: Array<[unknown, RegExp]> = [
      [{ tokenFile: 't', hosts: [], config: 'D1', job }, /hosts must be a non-empty array/],
      [{ tokenFile: 't', hosts: [{ name: 'a', devices: 0 }], config: 'D1', job }, /hosts\[0\]\.devices/],
      [
        {
          tokenFile: 't',
          hosts: [
            { name: 'a', devices: 1 },
            { name: 'a', devices: 1 },
          ],
          config: 'D1',
          job,
        },
        /unique/,
      ],
      [{ tokenFile: 't', hosts: [{ name: 'a', devices: 1 }], config: 'D1' }, /job is missing/],
      [{ hosts: [{ name: 'a', devices: 1 }], config: 'D1', job }, /tokenFile/],
    ];
    cases.forEach(([script, reason], i) => {
      expect(() => readClusterScript(file(`bad-${i}.json`, JSON.stringify(script)))).toThrow(reason);
    });
    expect(() => readClusterScript(file('not-json.json', '{'))).toThrow(UsageError);
  });
});
