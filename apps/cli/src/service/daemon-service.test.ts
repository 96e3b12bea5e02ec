import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.ts';
import { readDaemonServiceFlags } from './daemon-service.ts';

describe('coordinator --http flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-daemon-flags-'));
  const keyFile = join(dir, 'api-key');
  writeFileSync(keyFile, 'service-api-key-padded-to-at-least-32-bytes-long\n', { mode: 0o600 });
  const service = {
    http: '127.0.0.1:0',
    'state-dir': join(dir, 'state'),
    'api-key-file': keyFile,
    model: 'm',
  };

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('without --http there is no service, and its flags are refused by name', () => {
    expect(readDaemonServiceFlags({})).toBeNull();
    expect(() => readDaemonServiceFlags({ 'state-dir': '/tmp/x' })).toThrow(UsageError);
    expect(() => readDaemonServiceFlags({ model: 'm' })).toThrow(/--model needs --http/);
    expect(() => readDaemonServiceFlags({ 'host-kv-memory': '1MiB' })).toThrow(
      /--host-kv-memory needs --http/,
    );
    expect(() => readDaemonServiceFlags({ 'kv-dtype': 'bf16' })).toThrow(/--kv-dtype needs --http/);
  });

  it('with --http: an address, a layout and a state dir are checked', () => {
    expect(() => readDaemonServiceFlags({ http: 'nowhere' })).toThrow(/--http must be HOST:PORT/);
    expect(() => readDaemonServiceFlags({ http: '127.0.0.1:0', config: 'Q3' })).toThrow(/--config/);
    expect(() => readDaemonServiceFlags({ http: '127.0.0.1:0' })).toThrow(/--state-dir/);
  });

  it("the host KV tier and KV dtype reach every batch's job (a Seesaw pair needs the tier)", () => {
    expect(readDaemonServiceFlags(service)?.engine).not.toHaveProperty('hostKvBytes', expect.anything());
    const settings = readDaemonServiceFlags({ ...service, 'host-kv-memory': '2MiB', 'kv-dtype': 'bf16' });
    expect(settings?.engine).toMatchObject({ hostKvBytes: 2 << 20, kvDtype: 'bf16' });
  });

  it('bad host KV combinations are refused naming the flag', () => {
    expect(() => readDaemonServiceFlags({ ...service, 'kv-dtype': 'fp8' })).toThrow(/--kv-dtype/);
    expect(() => readDaemonServiceFlags({ ...service, preemption: 'swap' })).toThrow(
      /--preemption swap needs --host-kv-memory/,
    );
    expect(() => readDaemonServiceFlags({ ...service, 'host-kv-memory': 'lots' })).toThrow(
      /--host-kv-memory/,
    );
  });
});
