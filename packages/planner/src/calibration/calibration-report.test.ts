import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LinkProfile } from '../hardware.ts';
import { calibrationReport, LAYER_ROW, MEDIAN_ERROR_THRESHOLD } from './calibration-report.ts';
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

  it("predicts every op of every GPU, and the planner's layer form, within 10% median", () => {
    const compute = report.rows.filter((r) => ['a100', 'a40', 'h100'].includes(r.subject));
    expect(compute.filter((r) => r.what === LAYER_ROW)).toHaveLength(3);
    for (const row of compute)
      expect(row.medianError, `${row.subject} ${row.what}`).toBeLessThan(MEDIAN_ERROR_THRESHOLD);
  });

  it('passes every group on its denoised error, and the noisy cross-host send on that alone', () => {
    expect(report.failing).toEqual([]);
    // The NVLink-pair machines' cross-host send/recv (one table, kept twice) scatters 9% about
    // its neighbours: against its rows the model misses by more than 10% (no function of message
    // size does better than ~10%, see docs/planner-validation.md), against their local medians
    // by about half that. Every other group is within 10% either way.
    const noisy = report.rows.filter(
      (r) => r.what === 'send_recv/2w/1dpn' && r.subject.endsWith('pairwise_nvlink'),
    );
    const crossHostNvlinkPair = noisy.filter((r) => r.subject !== 'a40_pairwise_nvlink');
    expect(crossHostNvlinkPair).toHaveLength(2);
    for (const row of crossHostNvlinkPair) {
      expect(row.scatter).toBeGreaterThan(0.08);
      expect(row.medianError).toBeGreaterThan(MEDIAN_ERROR_THRESHOLD);
      expect(row.medianError).toBeLessThan(row.scatter + 0.02);
      expect(row.denoisedMedianError).toBeLessThan(0.07);
    }
    for (const row of report.rows.filter((r) => !crossHostNvlinkPair.includes(r)))
      expect(row.medianError, `${row.subject} ${row.what}`).toBeLessThan(MEDIAN_ERROR_THRESHOLD);
  });

  it('fails the noisy send/recv group once its bandwidth is 25% off', () => {
    const profiles = shippedFittedProfiles();
    const key = 'a100_pairwise_nvlink/send_recv/2w/1dpn';
    const link = profiles.links[key];
    const large = link.largeMessages;
    const slow: LinkProfile = {
      ...link,
      bytesPerSecond: link.bytesPerSecond / 1.25,
      largeMessages: large && { ...large, bytesPerSecond: large.bytesPerSecond / 1.25 },
    };
    const off = calibrationReport({ ...profiles, links: { ...profiles.links, [key]: slow } }, inRepoTables);
    expect(off.failing.map((r) => `${r.subject}/${r.what}`)).toEqual([key]);
  });

  it('holds the summed linear ops closer than the assumed presets did, on every GPU', () => {
    expect(report.assumedLayer.map((r) => r.subject).sort()).toEqual(['a100', 'a40', 'h100']);
    for (const assumed of report.assumedLayer) {
      const fitted = report.rows.find((r) => r.subject === assumed.subject && r.what === LAYER_ROW);
      expect(fitted?.medianError, assumed.subject).toBeLessThan(assumed.medianError / 1.5);
    }
  });

  it('lists as failing exactly the groups over the threshold', () => {
    expect(report.failing).toEqual(
      report.rows.filter((row) => row.denoisedMedianError > MEDIAN_ERROR_THRESHOLD),
    );
  });
});
