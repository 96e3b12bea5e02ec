import { join } from 'node:path';
import { loadModelConfig, parseParallelConfig } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { rankedSeesawReplans, type SeesawReplan } from './seesaw-replan.ts';

/** The tiny-llama fixture's shape: 8 heads, 4 KV heads, MLP 768, 4 layers. */
const TINY = loadModelConfig(join(import.meta.dirname, '../../../../fixtures/tiny-llama-bf16'));

const nameOf = (r: SeesawReplan) =>
  r.kind === 'static'
    ? `static D${r.parallel.dp}T${r.parallel.tp}P${r.parallel.pp}`
    : `D${r.prefill.dp}T${r.prefill.tp}P${r.prefill.pp}->T${r.decode.tp}P${r.decode.pp}`;

const ranked = (prefill: string, decode: string, numHealthy: number, min?: number, model = TINY) =>
  rankedSeesawReplans(
    { prefill: parseParallelConfig(prefill), decode: parseParallelConfig(decode) },
    numHealthy,
    model,
    { minDevicesPerReplica: min },
  ).map(nameOf);

describe('rankedSeesawReplans', () => {
  it("keeps the lost pair's replica shapes when they fit, with as many replicas as fit", () => {
    expect(ranked('D2P2', 'D2T2', 3)[0]).toBe('D1T1P2->T2P1');
    expect(ranked('T2P2', 'T4', 4)[0]).toBe('D1T2P2->T4P1');
    // 5 devices: 4 used either as two replicas of 2 or one of 4; the lost shapes win the tie.
    expect(ranked('D2P2', 'D2T2', 5)[0]).toBe('D2T1P2->T2P1');
  });

  it('uses the most healthy devices before the shapes', () => {
    expect(ranked('T2P2', 'T4', 7)[0]).toBe('D3T1P2->T2P1');
  });

  it("otherwise the paper's pairing on the most devices: prefill all pipeline, decode all TP", () => {
    // T2P2 -> T4 on 4 devices losing host-b's 2: P2 -> T2 on the 2 left.
    expect(ranked('T2P2', 'T4', 2)[0]).toBe('D1T1P2->T2P1');
    // 3 devices: no layout of 3 splits 4 layers and 8 heads; a pair on 2 of them beats static D3.
    expect(ranked('P4', 'T4', 3)[0]).toBe('D1T1P2->T2P1');
    expect(ranked('P4', 'T4', 3).at(-1)).toBe('static D3T1P1');
  });

  it('falls back to a static layout only when no pair fits', () => {
    expect(ranked('P2', 'T2', 1)).toEqual(['static D1T1P1']);
    expect(ranked('P2', 'T2', 0)).toEqual([]);
    // The weights need 4 devices a copy: only pairs of 4 qualify.
    expect(ranked('P4', 'T4', 6, 4)[0]).toBe('D1T1P4->T4P1');
    expect(ranked('P4', 'T4', 3, 4)).toEqual([]);
  });

  it('lists every candidate once, each pair of two different shapes with the same devices', () => {
    const all = ranked('P2', 'T2', 4);
    expect(new Set(all).size).toBe(all.length);
    for (const name of all.filter((n) => !n.startsWith('static'))) {
      const [prefill, decode] = name.split('->') as [string, string];
      expect(prefill.slice(prefill.indexOf('T'))).not.toBe(decode);
    }
    expect(() => ranked('P2', 'T2', -1)).toThrow(/numHealthy/);
  });
});
