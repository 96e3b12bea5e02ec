import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { type CompareRow, compareJson, formatCompareTable, parseCompareSpecs } from './compare-table.ts';

const ROW: CompareRow = {
  label: 'seesaw:P2-T2',
  numRequests: 16,
  elapsedSeconds: 4,
  requestsPerSecond: 4,
  totalTokensPerSecond: 1200,
  outputTokensPerSecond: 256,
  numSwitches: 3,
  prefillSeconds: 1.5,
  decodeSeconds: 2.25,
  reshardSeconds: 0.125,
  kvWaitSeconds: 0.05,
  swapInHiddenFraction: 0.875,
  swapInHiddenByteFraction: 0.8,
  peakDeviceMemoryBytes: 3 * 1024 ** 2,
  hostKvMemoryBytes: 64 * 1024 ** 2,
  kvBytesPerMovedToken: 12288,
};
const STATIC: CompareRow = {
  ...ROW,
  label: 'static:T2',
  elapsedSeconds: 5,
  requestsPerSecond: 3.2,
  totalTokensPerSecond: 960,
  outputTokensPerSecond: 204.8,
  numSwitches: 0,
  reshardSeconds: 0,
  kvWaitSeconds: 0,
  swapInHiddenFraction: null,
  swapInHiddenByteFraction: null,
  hostKvMemoryBytes: 0,
  kvBytesPerMovedToken: null,
};

describe('parseCompareSpecs', () => {
  it('reads seesaw pairs and static layouts, normalising labels', () => {
    expect(parseCompareSpecs('seesaw:P2-T2, static:T2,static:d1t1p2,seesaw:D1T2P1->D1T1P2')).toEqual([
      {
        kind: 'seesaw',
        label: 'seesaw:P2-T2',
        prefill: { dp: 1, tp: 1, pp: 2 },
        decode: { dp: 1, tp: 2, pp: 1 },
      },
      { kind: 'static', label: 'static:T2', parallel: { dp: 1, tp: 2, pp: 1 } },
      { kind: 'static', label: 'static:P2', parallel: { dp: 1, tp: 1, pp: 2 } },
      {
        kind: 'seesaw',
        label: 'seesaw:T2-P2',
        prefill: { dp: 1, tp: 2, pp: 1 },
        decode: { dp: 1, tp: 1, pp: 2 },
      },
    ]);
  });

  it.each([
    ['', 'at least one run'],
    ['T2', 'each run is seesaw:PREFILL-DECODE or static:CONFIG'],
    ['seesaw:P2', 'a seesaw run is PREFILL-DECODE'],
    ['seesaw:D2P2-T2', 'differ in DP'],
    ['seesaw:P2-T4', 'tp * pp equal'],
    ['static:X9', 'is not of the form'],
    ['static:T2,static:D1T2', 'lists static:T2 twice'],
  ])('refuses %j', (text, message) => {
    expect(() => parseCompareSpecs(text)).toThrow(UsageError);
    expect(() => parseCompareSpecs(text)).toThrow(message);
  });
});

describe('formatCompareTable', () => {
  it('puts runs side by side with every metric, aligned', () => {
    const text = formatCompareTable([ROW, STATIC]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s+seesaw:P2-T2\s+static:T2$/);
    const line = (label: string) => lines.find((l) => l.startsWith(label));
    expect(line('Requests/s')).toMatch(/4\.00\s+3\.20$/);
    expect(line('Total tokens/s')).toMatch(/1200\.00\s+960\.00$/);
    expect(line('Output tokens/s')).toMatch(/256\.00\s+204\.80$/);
    // 4800 tokens over 4 s less 0.125 s of re-sharding; the static run has none to take out.
    expect(line('Total tokens/s less re-shards')).toMatch(/1238\.71\s+960\.00$/);
    expect(line('Phase switches')).toMatch(/3\s+0$/);
    expect(line('Time in prefill')).toMatch(/1\.50 s\s+1\.50 s$/);
    expect(line('Time in decode')).toMatch(/2\.25 s\s+2\.25 s$/);
    expect(line('Time re-sharding')).toMatch(/0\.13 s\s+0\.00 s$/);
    expect(line('Time waiting for KV')).toMatch(/0\.05 s\s+0\.00 s$/);
    expect(line('Swap-in hidden (sequences)')).toMatch(/87\.5%\s+-$/);
    expect(line('Swap-in hidden (bytes)')).toMatch(/80\.0%\s+-$/);
    expect(line('Peak device memory')).toMatch(/3\.00 MiB\s+3\.00 MiB$/);
    expect(line('Host KV memory')).toMatch(/64\.00 MiB\s+-$/);
    expect(line('KV bytes per swapped token')).toMatch(/12288\s+-$/);
    expect(line('Speed-up vs seesaw:P2-T2')).toMatch(/1\.00x\s+0\.80x$/);
    expect(line('Share of best static')).toMatch(/1\.25x\s+1\.00x$/);
    // Right-aligned: every line of the table has the same length.
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(formatCompareTable([])).toBe('');
  });

  it('compares every run with the best static run, and leaves the line out without one', () => {
    const slower = { ...STATIC, label: 'static:P2', totalTokensPerSecond: 480 };
    const lines = formatCompareTable([ROW, slower, STATIC]).split('\n');
    expect(lines.find((l) => l.startsWith('Share of best static'))).toMatch(/1\.25x\s+0\.50x\s+1\.00x$/);
    expect(formatCompareTable([ROW])).not.toContain('Share of best static');
  });

  it('writes the same figures as JSON rows', () => {
    const [seesaw, staticRow] = compareJson([ROW, STATIC]);
    expect(seesaw).toMatchObject({
      run: 'seesaw:P2-T2',
      tokens_per_second: 1200,
      tokens_per_second_less_reshards: 4800 / 3.875,
      num_switches: 3,
      swap_in_hidden_fraction: 0.875,
      swap_in_hidden_byte_fraction: 0.8,
      host_kv_memory_bytes: 64 * 1024 ** 2,
      kv_bytes_per_moved_token: 12288,
    });
    expect(staticRow.swap_in_hidden_fraction).toBeNull();
    expect(staticRow.kv_bytes_per_moved_token).toBeNull();
    expect(JSON.parse(JSON.stringify(staticRow))).toEqual(staticRow);
  });
});
