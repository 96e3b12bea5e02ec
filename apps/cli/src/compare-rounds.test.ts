import { describe, expect, it } from 'vitest';
import {
  type CompareRounds,
  lowerMedian,
  medianRows,
  medianShareOfBestStatic,
  roundOrder,
  roundTableLines,
  sharesOfBestStatic,
  tokensPerSecondByRound,
} from './compare-rounds.ts';
import { type CompareRow, formatCompareTable } from './compare-table.ts';

function row(label: string, totalTokensPerSecond: number, elapsedSeconds = 1): CompareRow {
  return {
    label,
    numRequests: 8,
    elapsedSeconds,
    requestsPerSecond: 8 / elapsedSeconds,
    totalTokensPerSecond,
    outputTokensPerSecond: totalTokensPerSecond / 2,
    numSwitches: label.startsWith('seesaw:') ? 1 : 0,
    prefillSeconds: 0.25,
    decodeSeconds: 0.75,
    reshardSeconds: 0,
    kvWaitSeconds: 0,
    swapInHiddenFraction: null,
    swapInHiddenByteFraction: null,
    peakDeviceMemoryBytes: 1024,
    hostKvMemoryBytes: 0,
    kvBytesPerMovedToken: null,
  };
}

function roundOf(...rows: CompareRow[]): Map<string, CompareRow> {
  return new Map(rows.map((r) => [r.label, r]));
}

// Round 2 is a slow sitting for everything: the per-round shares stay steady while raw figures move.
const ROUNDS: CompareRounds = [
  roundOf(row('seesaw:P2-T2', 950, 2), row('static:T2', 1000), row('static:D2', 900)),
  roundOf(row('seesaw:P2-T2', 720, 3), row('static:T2', 750), row('static:D2', 800)),
  roundOf(row('seesaw:P2-T2', 990, 4), row('static:T2', 1010), row('static:D2', 1100)),
];

describe('roundOrder', () => {
  it('rotates the runs by the round, so each configuration takes every position once', () => {
    expect([0, 1, 2].map((round) => roundOrder(3, round))).toEqual([
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
    ]);
    for (let round = 0; round < 5; round++) expect([...roundOrder(4, round)].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('lowerMedian', () => {
  it('takes the middle value, the lower one of an even count, and refuses none', () => {
    expect(lowerMedian([3, 1, 2])).toBe(2);
    expect(lowerMedian([4, 1, 3, 2])).toBe(2);
    expect(lowerMedian([7])).toBe(7);
    expect(() => lowerMedian([])).toThrow('no values');
  });
});

describe('medianRows', () => {
  it("keeps each label's median run whole, in the given order, leaving out labels that never ran", () => {
    const rows = medianRows(['static:D2', 'seesaw:P2-T2', 'static:P2'], ROUNDS);
    expect(rows.map((r) => [r.label, r.totalTokensPerSecond, r.elapsedSeconds])).toEqual([
      ['static:D2', 900, 1],
      ['seesaw:P2-T2', 950, 2],
    ]);
  });
});

describe('shares of the best static layout', () => {
  it("divides by each round's own best static run and takes the median of the ratios", () => {
    const shares = sharesOfBestStatic(ROUNDS, 'seesaw:P2-T2');
    expect(shares.map((share) => share?.toFixed(4))).toEqual(['0.9500', '0.9000', '0.9000']);
    expect(medianShareOfBestStatic(ROUNDS, 'seesaw:P2-T2')).toBeCloseTo(0.9, 12);
    // Against the median rows instead (950 / 1000), the same runs would read 0.95x.
    expect(sharesOfBestStatic(ROUNDS, 'static:T2')).toEqual([1, 750 / 800, 1010 / 1100]);
  });

  it('marks a round where the run or every static run failed, and skips it in the median', () => {
    const rounds: CompareRounds = [
      roundOf(row('seesaw:P2-T2', 500), row('static:T2', 1000)),
      roundOf(row('static:T2', 900)),
      roundOf(row('seesaw:P2-T2', 800)),
    ];
    expect(tokensPerSecondByRound(rounds, 'seesaw:P2-T2')).toEqual([500, null, 800]);
    expect(sharesOfBestStatic(rounds, 'seesaw:P2-T2')).toEqual([0.5, null, null]);
    expect(medianShareOfBestStatic(rounds, 'seesaw:P2-T2')).toBe(0.5);
    expect(medianShareOfBestStatic([roundOf(row('seesaw:P2-T2', 1))], 'seesaw:P2-T2')).toBeNull();
  });
});

describe('the table of a comparison in rounds', () => {
  it("prints every round's figures and the median share under the median runs", () => {
    const labels = ['seesaw:P2-T2', 'static:T2', 'static:D2'];
    const table = formatCompareTable(medianRows(labels, ROUNDS), roundTableLines(ROUNDS));
    expect(table).toMatch(/^Total tokens\/s in rounds 1-3\s+950 720 990\s+1000 750 1010\s+900 800 1100$/m);
    expect(table).toMatch(
      /^Share of best static in each round\s+0\.95x 0\.90x 0\.90x\s+1\.00x 0\.94x 0\.92x\s/m,
    );
    expect(table).toMatch(/^Share of best static, median of rounds\s+0\.90x\s+0\.94x\s+1\.00x$/m);
  });
});
