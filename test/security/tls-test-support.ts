/**
 * Test certificates made by the openssl CLI in a temporary directory: CAs, and a server
 * certificate for 127.0.0.1 / localhost signed by one of them. PEM files, RSA 2048, 2 days.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class TestCertificates {
  constructor(readonly dir: string) {}

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Writes ca-NAME.pem (self-signed) and ca-NAME-key.pem; returns the certificate's path. */
  makeCa(name: string): string {
    this.openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=seesaw test ${name}`,
      '-keyout',
      `ca-${name}-key.pem`,
      '-out',
      `ca-${name}.pem`,
    ]);
    return join(this.dir, `ca-${name}.pem`);
  }

  /** Writes server.pem / server-key.pem for 127.0.0.1 and localhost, signed by CA `ca`. */
  makeServerCert(ca: string): { cert: string; key: string } {
    this.openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      'server-key.pem',
      '-out',
      'server.csr',
    ]);
    writeFileSync(join(this.dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    this.openssl([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      `ca-${ca}.pem`,
      '-CAkey',
      `ca-${ca}-key.pem`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.ext',
      '-out',
      'server.pem',
    ]);
    // The CLI refuses a key file others can read, whatever openssl's default mode.
    chmodSync(join(this.dir, 'server-key.pem'), 0o600);
    return { cert: join(this.dir, 'server.pem'), key: join(this.dir, 'server-key.pem') };
  }

  read(file: string): Buffer {
    return readFileSync(join(this.dir, file));
  }
}
