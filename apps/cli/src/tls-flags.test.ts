/** --tls-cert/--tls-key/--tls-ca: files checked before any connection, with errors naming the flag. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTlsCaFlag, readTlsServerFlags } from './tls-flags.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-tls-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Only the PEM armour is checked here; the TLS tests use real certificates.
const cert = join(dir, 'cert.pem');
writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
const key = join(dir, 'key.pem');
writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
const notPem = join(dir, 'notes.txt');
writeFileSync(notPem, 'hello\n', { mode: 0o600 });

describe('TLS flags', () => {
  it('reads a certificate and key given together', () => {
    chmodSync(key, 0o600);
    expect(readTlsServerFlags({ 'tls-cert': cert, 'tls-key': key })?.cert.toString()).toContain(
      'CERTIFICATE',
    );
    expect(readTlsServerFlags({})).toBeUndefined();
  });

  it('refuses one without the other, a non-PEM file, a missing file and a key others can read', () => {
    expect(() => readTlsServerFlags({ 'tls-cert': cert })).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => readTlsServerFlags({ 'tls-cert': cert, 'tls-key': notPem })).toThrow(
      /--tls-key .*not a PEM/,
    );
    expect(() => readTlsServerFlags({ 'tls-cert': join(dir, 'none.pem'), 'tls-key': key })).toThrow(
      /--tls-cert .*none\.pem: ENOENT/,
    );
    chmodSync(key, 0o644);
    expect(() => readTlsServerFlags({ 'tls-cert': cert, 'tls-key': key })).toThrow(
      /--tls-key: .* readable or writable by group\/other \(mode 644\); run 'chmod 600/,
    );
    chmodSync(key, 0o600);
  });

  it('takes --tls-ca only with a wss:// address', () => {
    expect(readTlsCaFlag({ 'tls-ca': cert }, 'wss://127.0.0.1:1')).toBeInstanceOf(Buffer);
    expect(readTlsCaFlag({}, 'ws://127.0.0.1:1')).toBeUndefined();
    expect(() => readTlsCaFlag({ 'tls-ca': cert }, 'ws://127.0.0.1:1')).toThrow(
      /--tls-ca needs a wss:\/\/ address/,
    );
  });
});
