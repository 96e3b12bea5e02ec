/**
 * Two test hosts as network namespaces joined by a veth pair, made and removed by the test
 * itself (needs root and `ip`). Each suite picks its own name prefix and subnet byte so suites
 * running at the same time never share a namespace, an interface or an address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface IpResult {
  ok: boolean;
  error: string;
}

export function ip(...args: string[]): IpResult {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: result.status === 0, error: (result.stderr || result.error?.message || '').trim() };
}

export function must(result: IpResult, what: string): void {
  if (!result.ok) throw new Error(`${what}: ${result.error}`);
}

/** Why this machine cannot run namespace tests, or undefined when it can (probes and cleans up). */
export function whyNoNamespaces(probeName: string): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip'))
    return 'no `ip` command';
  const added = ip('netns', 'add', probeName);
  if (!added.ok) return `ip netns add failed: ${added.error}`;
  ip('netns', 'del', probeName);
  if (spawnSync('curl', ['--version']).status !== 0) return 'no `curl` command';
  return undefined;
}

export class TwoHostNetwork {
  readonly nsA: string;
  readonly nsB: string;
  readonly vethA: string;
  readonly vethB: string;
  readonly addrA: string;
  readonly addrB: string;
  /** Command prefixes that run a program inside namespace A or B. */
  readonly inA: string[];
  readonly inB: string[];

  /** prefix: a short letter code (interface names are capped at 15 characters). */
  constructor(prefix: string, subnetByte: number) {
    const tag = `${process.pid % 100_000}`;
    this.nsA = `seesaw-${prefix}a-${tag}`;
    this.nsB = `seesaw-${prefix}b-${tag}`;
    this.vethA = `s${prefix}a${tag}`;
    this.vethB = `s${prefix}b${tag}`;
    const subnet = `10.${subnetByte}.${process.pid % 250}`;
    this.addrA = `${subnet}.1`;
    this.addrB = `${subnet}.2`;
    this.inA = ['ip', 'netns', 'exec', this.nsA];
    this.inB = ['ip', 'netns', 'exec', this.nsB];
  }

  create(): void {
    must(ip('netns', 'add', this.nsA), 'netns add A');
    must(ip('netns', 'add', this.nsB), 'netns add B');
    must(ip('link', 'add', this.vethA, 'type', 'veth', 'peer', 'name', this.vethB), 'veth pair');
    must(ip('link', 'set', this.vethA, 'netns', this.nsA), 'veth into A');
    must(ip('link', 'set', this.vethB, 'netns', this.nsB), 'veth into B');
    must(ip('-n', this.nsA, 'addr', 'add', `${this.addrA}/24`, 'dev', this.vethA), 'address A');
    must(ip('-n', this.nsB, 'addr', 'add', `${this.addrB}/24`, 'dev', this.vethB), 'address B');
    for (const [ns, dev] of [
      [this.nsA, this.vethA],
      [this.nsB, this.vethB],
    ] as const) {
      must(ip('-n', ns, 'link', 'set', 'lo', 'up'), `lo up in ${ns}`);
      must(ip('-n', ns, 'link', 'set', dev, 'up'), `${dev} up`);
    }
  }

  /** Deleting a namespace deletes the veth end inside it, and with it the pair. */
  destroy(): void {
    ip('netns', 'del', this.nsA);
    ip('netns', 'del', this.nsB);
  }
}
