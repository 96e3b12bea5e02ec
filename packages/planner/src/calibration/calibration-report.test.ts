import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { calibrationReport, MEDIAN_ERROR_THRESHOLD } from './calibration-report.ts';
import { LINEAR_OPS } from './calibration-tables.ts';
import { shippedFittedProfiles } from './fitted-profiles.ts';

// The shipped profiles against the in-repo copy of the measured tables (calibration/vidur).
const inRepoTables = fileURLToPath(new URL('../../calibration/vidur', import.meta.url));

describe('shipped fitted profiles against the measured tables', () => {
  const report = calibrationReport(shippedFittedProfiles(), inRepoTables);

  it('covers every measured GPU, op and collective group', () => {
    expect(report.unfitted).toEqual([]);
    expect(new Set(report.rows.map((row) => row.subject))).toEqual(
      new Set([
        'a100',
        'a40',
        'h100',
        'a100_dgx',
        'h100_dgx',
        'a100_pairwise_nvlink',
        'a40_pairwise_nvlink',
        'h100_pairwise_nvlink',
      ]),
    );
  });

  it('predicts the linear ops of A100 and A40 within 10% median', () => {
    for (const row of report.rows.filter(
      (r) => ['a100', 'a40'].includes(r.subject) && (LINEAR_OPS as readonly string[]).includes(r.what),
    ))
      expect(row.medianError, `${row.subject} ${row.what}`).toBeLessThan(MEDIAN_ERROR_THRESHOLD);
  });

  it('lists as failing exactly the groups over the threshold', () => {
    expect(report.failing).toEqual(report.rows.filter((row) => row.medianError > MEDIAN_ERROR_THRESHOLD));
  });
});
