/**
 * A `seesaw cluster-run` script: read, checked, its paths made absolute (relative ones are
 * relative to the script's directory). See cluster-script.ts for the format.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { KV_DTYPE_SETTINGS, type KvDTypeSetting } from '@seesaw/protocol';
import { UsageError } from '../args.ts';
import { parseByteSize } from '../byte-size.ts';

export interface ClusterScript {
  tokenFile: string;
  listen: string;
  hosts: Array<{ name: string; devices: number }>;
  /** A static job's layout; absent for a Seesaw job. */
  config?: string;
  /** A Seesaw job: both layouts and each host's KV tier in bytes. */
  seesaw?: { prefill: string; decode: string; hostKvBytes: number };
  /** A static job's host KV tier on every host (preemption may swap there); absent: none. */
  hostKvBytes?: number;
  /** The KV dtype setting of the job (auto|bf16|f16|f32); absent: the default. */
  kvDtype?: KvDTypeSetting;
  threadsPerDevice?: number;
  job: { model: string; input: string; output: string };
}

/** What a script file may hold (hostKvMemory as a size, '1GiB'). */
type ClusterScriptFile = Omit<ClusterScript, 'seesaw' | 'hostKvBytes'> & {
  prefill?: string;
  decode?: string;
  hostKvMemory?: string;
};

/** Reads and checks a cluster script; paths come back absolute. */
export function readClusterScript(path: string): ClusterScript {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cluster script ${path}: ${(error as Error).message}`);
  }
  const fail = (why: string): never => {
    throw new UsageError(`cluster script ${path}: ${why}`);
  };
  const s = raw as Partial<ClusterScriptFile>;
  if (typeof s !== 'object' || s === null) fail('expected a JSON object');
  const text = (value: unknown, name: string): string =>
    typeof value === 'string' && value !== '' ? value : fail(`${name} must be a non-empty string`);
  const base = dirname(resolve(path));
  const abs = (p: string) => (isAbsolute(p) ? p : join(base, p));
  if (!Array.isArray(s.hosts) || s.hosts.length === 0) fail('hosts must be a non-empty array');
  const hosts = s.hosts!.map((host, i) => {
    const name = text(host?.name, `hosts[${i}].name`);
    if (!Number.isInteger(host.devices) || host.devices < 1)
      fail(`hosts[${i}].devices must be an integer >= 1`);
    return { name, devices: host.devices };
  });
  if (new Set(hosts.map((h) => h.name)).size !== hosts.length) fail('host names must be unique');
  const job = s.job ?? fail('job is missing');
  const script: ClusterScript = {
    tokenFile: abs(text(s.tokenFile, 'tokenFile')),
    listen: s.listen === undefined ? '127.0.0.1:0' : text(s.listen, 'listen'),
    hosts,
    job: {
      model: abs(text(job.model, 'job.model')),
      input: abs(text(job.input, 'job.input')),
      output: abs(text(job.output, 'job.output')),
    },
  };
  const hostKvBytesOf = (value: unknown, name: string): number => {
    const size = text(value, name);
    try {
      return parseByteSize(size);
    } catch (error) {
      return fail(`hostKvMemory: ${(error as Error).message}`);
    }
  };
  if (s.prefill !== undefined || s.decode !== undefined) {
    if (s.config !== undefined)
      fail('give config for a static job, or prefill and decode for Seesaw, not both');
    const hostKvBytes = hostKvBytesOf(
      s.hostKvMemory,
      "hostKvMemory (each host's KV tier, with prefill and decode)",
    );
    script.seesaw = { prefill: text(s.prefill, 'prefill'), decode: text(s.decode, 'decode'), hostKvBytes };
  } else {
    script.config = text(s.config, 'config');
    if (s.hostKvMemory !== undefined) script.hostKvBytes = hostKvBytesOf(s.hostKvMemory, 'hostKvMemory');
  }
  if (s.kvDtype !== undefined) {
    if (!KV_DTYPE_SETTINGS.includes(s.kvDtype as KvDTypeSetting))
      fail(`kvDtype must be one of ${KV_DTYPE_SETTINGS.join(', ')}, got ${JSON.stringify(s.kvDtype)}`);
    script.kvDtype = s.kvDtype;
  }
  if (s.threadsPerDevice !== undefined) {
    if (!Number.isInteger(s.threadsPerDevice) || s.threadsPerDevice < 1)
      fail('threadsPerDevice must be an integer >= 1');
    script.threadsPerDevice = s.threadsPerDevice;
  }
  return script;
}
