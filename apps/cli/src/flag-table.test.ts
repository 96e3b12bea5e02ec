import { ENGINE_DEFAULTS } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from './args.ts';
import { COMMANDS, commandDeclaration, commandFlagSpec } from './command-flags.ts';
import { defaultsOf, flagsOf, parseSpecOf, stringFlag } from './flag-table.ts';
import { commandUsage } from './usage.ts';

/** Each command's flags as they were before the table existed: the table must keep exactly these. */
const FLAGS_BEFORE_THE_TABLE: Record<string, string[]> = {
  run: [
    'backend',
    'cluster',
    'config',
    'decode',
    'device-memory',
    'devices',
    'gpus-per-adapter',
    'host-kv-memory',
    'host-low-mark',
    'host-weight-cache',
    'input',
    'kv-cache-memory',
    'kv-dtype',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'output',
    'preemption',
    'prefill',
    'prefill-token-budget',
    'report',
    'reshard-route',
    'threads',
    'tls-ca',
    'token-file',
    'trace',
    'watermark',
  ],
  bench: [
    'backend',
    'compare',
    'config',
    'dataset',
    'decode',
    'device-memory',
    'devices',
    'dtype',
    'gpus-per-adapter',
    'host-kv-memory',
    'host-low-mark',
    'host-weight-cache',
    'input-len',
    'json',
    'kv-cache-memory',
    'kv-dtype',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'num-prompts',
    'output-len',
    'preemption',
    'prefill',
    'prefill-token-budget',
    'profile',
    'report',
    'reshard-route',
    'rounds',
    'seed',
    'shape',
    'threads',
    'trace',
    'watermark',
  ],
  serve: [
    'api-key-file',
    'batch-window-override',
    'cluster',
    'config',
    'decode',
    'device-memory',
    'devices',
    'host-kv-memory',
    'host-low-mark',
    'host-weight-cache',
    'http',
    'kv-cache-memory',
    'kv-dtype',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'preemption',
    'prefill',
    'prefill-token-budget',
    'reshard-route',
    'state-dir',
    'threads',
    'token-file',
    'watermark',
  ],
  'gen-model': ['dtype', 'max-shard-size', 'out', 'seed', 'shape'],
  quantize: ['model', 'out', 'type'],
  coordinator: [
    'api-key-file',
    'batch-window-override',
    'config',
    'device-memory',
    'host-kv-memory',
    'http',
    'kv-dtype',
    'listen',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'preemption',
    'state-dir',
    'threads',
    'tls-cert',
    'tls-key',
    'token-file',
  ],
  worker: [
    'backend',
    'connect',
    'devices',
    'gpus-per-adapter',
    'name',
    'peer-listen',
    'tls-ca',
    'tls-cert',
    'tls-key',
    'token-file',
  ],
  token: ['out'],
  'cluster-run': [],
  plan: [
    'assumed-profiles',
    'cluster',
    'device-memory',
    'devices',
    'host-memory',
    'json',
    'kv-dtype',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'model-dir',
    'num-requests',
    'profile',
    'prune',
    'seed',
    'threads',
    'top',
    'workload',
  ],
  simulate: [
    'assumed-profiles',
    'cluster',
    'config',
    'decode',
    'device-memory',
    'devices',
    'host-memory',
    'json',
    'kv-dtype',
    'max-num-batched-tokens',
    'max-num-seqs',
    'model',
    'model-dir',
    'num-requests',
    'prefill',
    'profile',
    'reshard-route',
    'seed',
    'trace',
    'workload',
  ],
  profile: ['backend', 'device-memory', 'devices', 'host-memory', 'out', 'quick', 'threads'],
  validate: ['calibration'],
};

describe('the flag table', () => {
  it('gives every command exactly the flags it had', () => {
    for (const [command, names] of Object.entries(FLAGS_BEFORE_THE_TABLE)) {
      expect(Object.keys(commandFlagSpec(command)).sort(), command).toEqual(names);
    }
    expect(commandFlagSpec('profile').quick).toEqual({ type: 'boolean' });
    expect(commandFlagSpec('plan')['assumed-profiles']).toEqual({ type: 'boolean' });
  });

  it('documents every flag a command parses, and only those, in its --help', () => {
    for (const command of COMMANDS) {
      const usage = commandUsage(command.name);
      const listed = [...usage.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((match) => match[1]).sort();
      expect(listed, command.name).toEqual(Object.keys(parseSpecOf(command)).sort());
    }
  });

  it('shows the defaults from ENGINE_DEFAULTS', () => {
    const run = commandUsage('run');
    expect(run).toMatch(
      new RegExp(`--max-num-batched-tokens N .*\\(default ${ENGINE_DEFAULTS.maxNumBatchedTokens}\\)`),
    );
    expect(run).toMatch(
      new RegExp(`--prefill-token-budget N .*\\(default ${ENGINE_DEFAULTS.prefillTokenBudget}\\)`),
    );
    expect(defaultsOf(commandDeclaration('bench'))).toMatchObject({
      'max-num-seqs': ENGINE_DEFAULTS.maxNumSeqs,
      watermark: ENGINE_DEFAULTS.seesawWatermark,
      'host-low-mark': ENGINE_DEFAULTS.hostLowMark,
    });
  });

  it('refuses a flag declared twice for one command', () => {
    const twice = {
      name: 'twice',
      summary: 'a mistake',
      groups: [
        { title: 'A', flags: [stringFlag('model', 'DIR', 'one')] },
        { title: 'B', flags: [stringFlag('model', 'DIR', 'two')] },
      ],
    };
    expect(() => flagsOf(twice)).toThrow("flag --model is declared twice for 'twice'");
  });

  it('parses with the generated spec: an undeclared flag is a usage error naming it', () => {
    const values = parseFlags('run', ['--model', 'm', '--threads', '2'], commandFlagSpec('run'));
    expect(values).toMatchObject({ model: 'm', threads: '2' });
    expect(() => parseFlags('token', ['--model', 'm'], commandFlagSpec('token'))).toThrow(UsageError);
    expect(() => parseFlags('token', ['--model', 'm'], commandFlagSpec('token'))).toThrow("'--model'");
  });
});
