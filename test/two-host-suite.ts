/**
 * A describe block's two-host cluster: a temporary directory with a token file, the namespaces
 * (or loopback), a coordinator and agents host-a and host-b started before the suite's tests and
 * stopped, with the namespaces and the directory removed, after them. Fields are set in beforeAll.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ProcessGroup, type Started } from './remote-cluster-support.ts';
import type { TwoHostPlacement } from './two-host-cluster-support.ts';

export interface TwoHostSuite {
  group: ProcessGroup;
  dir: string;
  tokenFile: string;
  url: string;
  coordinator: Started;
  hostA: Started;
  hostB: Started;
}

/** Call inside describe: registers the cluster's start and stop around the suite. */
export function twoHostSuite(
  hosts: TwoHostPlacement,
  dirPrefix: string,
  devicesPerHost: number,
): TwoHostSuite {
  const suite = { group: new ProcessGroup(), dir: '', tokenFile: '' } as TwoHostSuite;
  beforeAll(async () => {
    suite.dir = mkdtempSync(join(tmpdir(), dirPrefix));
    suite.tokenFile = join(suite.dir, 'token');
    writeFileSync(suite.tokenFile, `${dirPrefix}secret-padded-to-at-least-32-bytes\n`, { mode: 0o600 });
    hosts.createNetwork();
    Object.assign(suite, await hosts.startCluster(suite.group, suite.tokenFile, devicesPerHost));
  }, 60_000);
  afterAll(async () => {
    await suite.group.stopAll();
    hosts.destroyNetwork();
    if (suite.dir) rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}
