import { describe, expect, it } from 'vitest';
import { localMedianSeconds, neighbourScatter } from './table-scatter.ts';

describe('neighbourScatter', () => {
  it('is 0 for rows on a line, whatever its slope and offset', () => {
    const line = [1, 2, 4, 8, 16].map((size) => ({ size, seconds: 5e-6 + size * 1e-6 }));
    expect(neighbourScatter([line])).toBeCloseTo(0, 12);
  });

  it('measures rows that alternate about a line, in size order whatever the order given', () => {
    // Rows 2, 4, 6 stand 10% above the line through sizes 1..7: each stands 0.1/1.1 off the line
    // through its neighbours, and rows 3 and 5 stand 0.1 off theirs; the median is 0.1/1.1.
    const rows = [5, 2, 7, 1, 4, 3, 6].map((size) => ({ size, seconds: size * (size % 2 === 0 ? 1.1 : 1) }));
    expect(neighbourScatter([rows])).toBeCloseTo(0.1 / 1.1, 12);
  });

  it('takes each series apart and needs three rows to say anything', () => {
    expect(neighbourScatter([[{ size: 1, seconds: 1 }], [{ size: 2, seconds: 3 }]])).toBeNaN();
  });
});

describe('localMedianSeconds', () => {
  it('takes out a lone slow row, keeps a step, and answers in the order given', () => {
    // Sizes 1..12 at 1 s, then 13..24 at 2 s; size 6 measured at 5 s.
    const sizes = Array.from({ length: 24 }, (_, i) => i + 1);
    const rows = sizes.map((size) => ({ size, seconds: size === 6 ? 5 : size <= 12 ? 1 : 2 })).reverse();
    const local = localMedianSeconds(rows, 2);
    const bySize = new Map(rows.map((row, i) => [row.size, local[i]]));
    expect(bySize.get(6)).toBe(1);
    expect(bySize.get(12)).toBe(1);
    expect(bySize.get(13)).toBe(2);
    expect(bySize.get(24)).toBe(2);
  });

  it('is each row itself with no neighbours to take', () => {
    const rows = [3, 1, 2].map((size) => ({ size, seconds: size * 10 }));
    expect(localMedianSeconds(rows, 0)).toEqual([30, 10, 20]);
  });
});
