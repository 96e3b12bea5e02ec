import { assumedLayerRates } from './calibrated-devices.ts';
import { loadComputeSamples, loadNetworkSamples } from './calibration-tables.ts';
import { median, relativeError } from './fit-minimize.ts';
import { groupBy, layerLinearSamples, networkGroupKey, predictCollectiveSeconds } from './fit-profiles.ts';
import type { FittedProfiles } from './fitted-profiles.ts';
import { type LinearRates, opWork, predictLayerLinearSeconds, predictOpSeconds } from './gpu-op-model.ts';
import { neighbourScatter } from './table-scatter.ts';

/** The model's error against one group of measurements (one GPU and op, or one collective group). */
export interface CalibrationErrorRow {
  /** 'a100', or a network group's cluster. */
  subject: string;
  /** 'mlp_up_proj', or 'all_reduce/8w/8dpn'. */
  what: string;
  samples: number;
  medianError: number;
  worstError: number;
  /** The measured rows' own scatter about their neighbours (neighbourScatter), for context. */
  scatter: number;
}

export interface CalibrationReport {
  rows: CalibrationErrorRow[];
  /**
   * The assumed presets' layer roofline (0.6 / 0.8 of the datasheet, no launch cost) against the
   * same summed linear ops: the evidence for planning with the fitted profiles instead.
   */
  assumedLayer: CalibrationErrorRow[];
  /** Groups whose median error exceeds the threshold. */
  failing: CalibrationErrorRow[];
  /** Measured groups the profiles have no fit for (a GPU or cluster not fitted). */
  unfitted: string[];
  thresholdMedianError: number;
}

export const MEDIAN_ERROR_THRESHOLD = 0.1;

/** The row of a GPU's four linear ops together, by the planner's layer roofline. */
export const LAYER_ROW = 'linear layer (plan)';

/**
 * Holds the fitted profiles against the measured tables of a calibration directory: for each GPU
 * and op, and each collective group, the median and worst |predicted - measured| / measured.
 * Rows with a zero median time (below the profiler's resolution) are left out.
 */
export function calibrationReport(
  profiles: FittedProfiles,
  calibrationDir: string,
  thresholdMedianError = MEDIAN_ERROR_THRESHOLD,
): CalibrationReport {
  const rows: CalibrationErrorRow[] = [];
  const assumedLayer: CalibrationErrorRow[] = [];
  const unfitted: string[] = [];
  const compute = loadComputeSamples(calibrationDir).filter((s) => s.medianMs > 0);
  for (const [key, samples] of groupBy(compute, (s) => `${s.gpu}\t${s.op}`)) {
    const [gpu, op] = key.split('\t');
    const fit = profiles.gpus[gpu];
    if (fit === undefined) {
      if (!unfitted.includes(gpu)) unfitted.push(gpu);
      continue;
    }
    const errors = samples.map((s) =>
      relativeError(predictOpSeconds(fit, s.op, opWork(s.op, s.shape, s.numTokens, s.tp)), s.medianMs / 1e3),
    );
    const series = [...groupBy(samples, (s) => `${s.model}/${s.tp}`).values()].map((rows) =>
      rows.map((s) => ({ size: s.numTokens, seconds: s.medianMs / 1e3 })),
    );
    const scatter = neighbourScatter(series);
    rows.push(errorRow(gpu, op, errors, scatter));
  }
  // The planner's own quantity: a layer's four linear ops together, by its one-roofline form.
  for (const [gpu, samples] of groupBy(compute, (s) => s.gpu)) {
    const fit = profiles.gpus[gpu];
    if (fit === undefined) continue;
    const layer = layerLinearSamples(samples);
    const series = [...groupBy(layer, (row) => `${row.model}/${row.tp}`).values()].map((rows) =>
      rows.map((row) => ({ size: row.work.flops, seconds: row.seconds })),
    );
    const scatter = neighbourScatter(series);
    const errorsOf = (rates: LinearRates) =>
      layer.map((row) => relativeError(predictLayerLinearSeconds(rates, row.work), row.seconds));
    rows.push(errorRow(gpu, LAYER_ROW, errorsOf(fit.layer), scatter));
    const assumed = assumedLayerRates(gpu);
    if (assumed !== undefined) assumedLayer.push(errorRow(gpu, LAYER_ROW, errorsOf(assumed), scatter));
  }
  const network = loadNetworkSamples(calibrationDir).filter((s) => s.medianMs > 0);
  for (const [key, samples] of groupBy(network, networkGroupKey)) {
    const link = profiles.links[key];
    if (link === undefined) {
      unfitted.push(key);
      continue;
    }
    const errors = samples.map((s) => relativeError(predictCollectiveSeconds(link, s), s.medianMs / 1e3));
    const scatter = neighbourScatter([
      samples.map((s) => ({ size: s.sizeBytes, seconds: s.medianMs / 1e3 })),
    ]);
    rows.push(errorRow(samples[0].cluster, key.slice(samples[0].cluster.length + 1), errors, scatter));
  }
  return {
    rows,
    assumedLayer,
    failing: rows.filter((row) => row.medianError > thresholdMedianError),
    unfitted,
    thresholdMedianError,
  };
}

function errorRow(subject: string, what: string, errors: number[], scatter: number): CalibrationErrorRow {
  return {
    subject,
    what,
    samples: errors.length,
    medianError: median(errors),
    worstError: Math.max(...errors),
    scatter,
  };
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatCalibrationReport(report: CalibrationReport): string {
  const lines = [
    "median, worst: |model - measured| / measured; scatter: the rows' own median distance from the",
    'line through their neighbours (what no smooth model of size can beat by much)',
    '',
    `${'gpu / cluster'.padEnd(22)}${'op / collective'.padEnd(28)}${'samples'.padStart(8)}${'median'.padStart(9)}${'worst'.padStart(9)}${'scatter'.padStart(9)}`,
  ];
  for (const row of report.rows) {
    const flag = row.medianError > report.thresholdMedianError ? '  > threshold' : '';
    lines.push(
      `${row.subject.padEnd(22)}${row.what.padEnd(28)}${String(row.samples).padStart(8)}${percent(row.medianError).padStart(9)}${percent(row.worstError).padStart(9)}${percent(row.scatter).padStart(9)}${flag}`,
    );
  }
  if (report.unfitted.length > 0) lines.push(`no fitted profile for: ${report.unfitted.join(', ')}`);
  if (report.assumedLayer.length > 0) {
    lines.push('', `${LAYER_ROW} with the assumed presets (0.6 / 0.8 of the datasheet, no launch cost):`);
    for (const row of report.assumedLayer) {
      const fitted = report.rows.find((r) => r.subject === row.subject && r.what === LAYER_ROW);
      lines.push(
        `  ${row.subject.padEnd(6)} median ${percent(row.medianError)}, worst ${percent(row.worstError)}` +
          (fitted === undefined ? '' : ` (fitted: median ${percent(fitted.medianError)})`),
      );
    }
  }
  lines.push(
    report.failing.length === 0 && report.unfitted.length === 0
      ? `every median error within ${percent(report.thresholdMedianError)}`
      : `${report.failing.length} group(s) with a median error over ${percent(report.thresholdMedianError)}` +
          (report.unfitted.length > 0 ? `, ${report.unfitted.length} measured group(s) without a fit` : ''),
  );
  return `${lines.join('\n')}\n`;
}
