import { join } from 'node:path';
import {
  deviceRanks,
  formatParallelConfig,
  numDevices,
  ParallelConfigError,
  parseParallelConfig,
} from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { loadModelConfig } from './model-location.ts';
import { validateForModel } from './parallel-config.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

describe('parseParallelConfig / formatParallelConfig', () => {
  it('reads every letter combination, missing letters meaning 1', () => {
    expect(parseParallelConfig('D2T2P2')).toEqual({ dp: 2, tp: 2, pp: 2 });
    expect(parseParallelConfig('T2')).toEqual({ dp: 1, tp: 2, pp: 1 });
    expect(parseParallelConfig('P4')).toEqual({ dp: 1, tp: 1, pp: 4 });
    expect(parseParallelConfig('D2T2')).toEqual({ dp: 2, tp: 2, pp: 1 });
    expect(parseParallelConfig('t2p4')).toEqual({ dp: 1, tp: 2, pp: 4 });
    expect(parseParallelConfig('D1')).toEqual({ dp: 1, tp: 1, pp: 1 });
    expect(parseParallelConfig('T16')).toEqual({ dp: 1, tp: 16, pp: 1 });
  });

  it('round-trips through the canonical name', () => {
    for (const name of ['D1', 'T2', 'P4', 'D2T2', 'T2P2', 'D2T4P2', 'D3P5', 'T12']) {
      expect(formatParallelConfig(parseParallelConfig(name))).toBe(name);
    }
    expect(formatParallelConfig({ dp: 1, tp: 4, pp: 1 })).toBe('T4');
    expect(formatParallelConfig(parseParallelConfig('D1T1P2'))).toBe('P2');
  });

  it('rejects malformed names with a message naming the input', () => {
    for (const bad of ['', 'X2', 'P2T2', 'T2T2', 'T0', 'T', 'D2-T2', 'T2.5', 'T02', 'T99999']) {
      expect(() => parseParallelConfig(bad)).toThrow(ParallelConfigError);
    }
    expect(() => parseParallelConfig('P2T2')).toThrow(/"P2T2" is not of the form/);
    expect(() => parseParallelConfig('T0')).toThrow(/T0 must be a whole number/);
    expect(() => formatParallelConfig({ dp: 1, tp: 0, pp: 1 })).toThrow(/tp must be a positive integer/);
  });
});

describe('deviceRanks', () => {
  it('orders devices dp-major, then pipeline stage, then TP rank', () => {
    const config = parseParallelConfig('D2T2P3');
    const ranks = deviceRanks(config);
    expect(ranks).toHaveLength(numDevices(config));
    expect(numDevices(config)).toBe(12);
    ranks.forEach((rank, i) => {
      expect(rank.device).toBe(i);
      expect(rank.device).toBe((rank.dpRank * 3 + rank.ppStage) * 2 + rank.tpRank);
    });
    expect(ranks.slice(0, 4)).toEqual([
      { device: 0, dpRank: 0, tpRank: 0, ppStage: 0 },
      { device: 1, dpRank: 0, tpRank: 1, ppStage: 0 },
      { device: 2, dpRank: 0, tpRank: 0, ppStage: 1 },
      { device: 3, dpRank: 0, tpRank: 1, ppStage: 1 },
    ]);
    // Every (dp, tp, pp) triple appears exactly once.
    const keys = new Set(ranks.map((r) => `${r.dpRank}/${r.tpRank}/${r.ppStage}`));
    expect(keys.size).toBe(12);
  });
});

describe('validateForModel', () => {
  const model = loadModelConfig(FIXTURE); // 8 heads, 4 KV heads, MLP 768, 4 layers, vocab 2048

  it('accepts the splits the fixture allows', () => {
    for (const name of ['D1', 'T2', 'T4', 'P2', 'P3', 'P4', 'T2P2', 'D4T4P4']) {
      expect(() => validateForModel(parseParallelConfig(name), model)).not.toThrow();
    }
  });

  it('lists every reason a split does not fit', () => {
    expect(() => validateForModel(parseParallelConfig('T8'), model)).toThrow(
      /T8 cannot shard this model: 4 KV heads do not divide by TP 8/,
    );
    expect(() => validateForModel(parseParallelConfig('P5'), model)).toThrow(
      /PP 5 is more than the model's 4 layers/,
    );
    const odd = { ...model, numHeads: 6, numKvHeads: 3, intermediateSize: 102, vocabSize: 3 };
    let message = '';
    try {
      validateForModel(parseParallelConfig('T4P8'), odd);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/6 attention heads/);
    expect(message).toMatch(/3 KV heads/);
    expect(message).toMatch(/MLP intermediate size 102/);
    expect(message).toMatch(/vocabulary of 3 is smaller than TP 4/);
    expect(message).toMatch(/PP 8/);
  });

  it('allows a vocabulary that does not divide by TP', () => {
    expect(() => validateForModel(parseParallelConfig('T4'), { ...model, vocabSize: 2051 })).not.toThrow();
  });
});
