/**
 * Usage mistakes with the Seesaw, compare, trace and report flags, through main() in this process
 * (cli.e2e.test.ts already checks that a UsageError becomes exit status 2 with the usage hint).
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { main, USAGE } from './main.ts';

describe('usage errors of the Seesaw, compare, trace and report flags', () => {
  it.each([
    [['run', '--model', 'm', '--input', 'a', '--output', 'b', '--prefill', 'P2'], '--prefill needs --decode'],
    [
      [
        'run',
        '--model',
        'm',
        '--input',
        'a',
        '--output',
        'b',
        '--prefill',
        'P2',
        '--decode',
        'T2',
        '--config',
        'T2',
      ],
      '--prefill/--decode replace --config',
    ],
    [['bench', '--model', 'm', '--num-prompts', '1', '--prefill', 'P2', '--decode', 'T4'], 'tp * pp equal'],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--watermark', '0.2'],
      '--watermark needs --prefill X --decode Y',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--compare', 'static:T2', '--config', 'T2'],
      '--config does not apply to --compare',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--compare', 'static:T2', '--kv-cache-memory', '1MiB'],
      '--kv-cache-memory does not apply to --compare',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--compare', 'seesaw:P2'],
      'a seesaw run is PREFILL-DECODE',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--rounds', '3'],
      '--rounds repeats the runs of a --compare',
    ],
    [
      ['run', '--model', 'm', '--input', 'a', '--output', 'b', '--cluster', 'ws://h:1', '--trace', 't.json'],
      '--trace runs on local device workers, not with --cluster',
    ],
    [
      ['run', '--model', 'm', '--input', 'a', '--output', 'b', '--cluster', 'ws://h:1', '--prefill', 'P2'],
      '--prefill needs --decode',
    ],
    [
      [
        'run',
        ...['--model', 'm', '--input', 'a', '--output', 'b', '--cluster', 'ws://h:1'],
        ...['--prefill', 'P2', '--decode', 'T2'],
      ],
      '--prefill/--decode with --cluster need --host-kv-memory SIZE',
    ],
    [
      [
        'run',
        ...['--model', 'm', '--input', 'a', '--output', 'b', '--cluster', 'ws://h:1'],
        ...['--prefill', 'P2', '--decode', 'T2', '--config', 'T2', '--host-kv-memory', '1MiB'],
      ],
      '--prefill/--decode replace --config',
    ],
    [
      ['run', '--model', 'm', '--input', 'a', '--output', 'b', '--cluster', 'ws://h:1', '--report', 'r.html'],
      '--report runs on local device workers, not with --cluster',
    ],
    [['bench', '--model', 'm', '--num-prompts', '1', '--trace'], "Option '--trace <value>' argument missing"],
    [
      ['run', '--model', 'm', '--input', 'a', '--output', 'b', '--prefill', 'auto', '--decode', 'auto'],
      '--prefill auto is for bench',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--prefill', 'auto', '--decode', 'T2'],
      'needs --decode auto',
    ],
    [
      ['bench', '--model', 'm', '--num-prompts', '1', '--compare', 'static:T2', '--profile', 'p.json'],
      '--profile does not apply to --compare',
    ],
  ])('%j is a usage error', async (args, message) => {
    const failure = main(args);
    await expect(failure).rejects.toThrow(UsageError);
    await expect(main(args)).rejects.toThrow(message);
  });

  it('help documents the new flags', () => {
    for (const text of [
      '--prefill X --decode Y',
      '25% of',
      'at most 4GiB',
      '--prefill-token-budget N',
      '--watermark F',
      '--host-low-mark F',
      '--reshard-route auto|p2p|host',
      '--compare seesaw:P2-T2,static:T2,static:P2',
      '--trace FILE',
      '--report FILE.html',
      '--prefill auto --decode auto --profile FILE',
    ]) {
      expect(USAGE).toContain(text);
    }
  });
});
