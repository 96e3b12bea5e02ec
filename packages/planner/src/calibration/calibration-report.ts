import { assumedLayerRates } from './calibrated-devices.ts';
import { loadComputeSamples, loadNetworkSamples } from './calibration-tables.ts';
import { median, relativeError } from './fit-minimize.ts';
import { groupBy, layerLinearSamples, networkGroupKey, predictCollectiveSeconds } from './fit-profiles.ts';
import type { FittedProfiles } from './fitted-profiles.ts';
import { type LinearRates, opWork, predictLayerLinearSeconds, predictOpSeconds } from './gpu-op-model.ts';
import {
  LOCAL_MEDIAN_HALF_WINDOW,
  localMedianSeconds,
  neighbourScatter,
  type SeriesPoint,
} from './table-scatter.ts';

/** The model's error against one group of measurements (one GPU and op, or one collective group). */
export interface CalibrationErrorRow {
  /** 'a100', or a network group's cluster. */
  subject: string;
  /** 'mlp_up_proj', or 'all_reduce/8w/8dpn'. */
  what: string;
  samples: number;
  /** Median |model - row| / row over the group's rows. */
  medianError: number;
  worstError: number;
  /**
   * Median |model - local median| / local median, the local median being the rows' times with
   * their row-to-row noise taken out (localMedianSeconds): the model's own bias along the table,
   * which the pass/fail threshold applies to.
   */
  denoisedMedianError: number;
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
  /** Groups whose median error against the denoised rows exceeds the threshold. */
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
    const series = [...groupBy(samples, (s) => `${s.model}/${s.tp}`).values()].map((rows) =>
      rows.map((s) => ({
        size: s.numTokens,
        seconds: s.medianMs / 1e3,
        predicted: predictOpSeconds(fit, s.op, opWork(s.op, s.shape, s.numTokens, s.tp)),
      })),
    );
    rows.push(errorRow(gpu, op, series));
  }
  // The planner's own quantity: a layer's four linear ops together, by its one-roofline form.
  for (const [gpu, samples] of groupBy(compute, (s) => s.gpu)) {
    const fit = profiles.gpus[gpu];
    if (fit === undefined) continue;
    const layer = layerLinearSamples(samples);
    const seriesOf = (rates: LinearRates) =>
      [...groupBy(layer, (row) => `${row.model}/${row.tp}`).values()].map((rows) =>
        rows.map((row) => ({
          size: row.work.flops,
          seconds: row.seconds,
          predicted: predictLayerLinearSeconds(rates, row.work),
        })),
      );
    rows.push(errorRow(gpu, LAYER_ROW, seriesOf(fit.layer)));
    const assumed = assumedLayerRates(gpu);
    if (assumed !== undefined) assumedLayer.push(errorRow(gpu, LAYER_ROW, seriesOf(assumed)));
  }
  const network = loadNetworkSamples(calibrationDir).filter((s) => s.medianMs > 0);
  for (const [key, samples] of groupBy(network, networkGroupKey)) {
    const link = profiles.links[key];
    if (link === undefined) {
      unfitted.push(key);
      continue;
    }
    const series = samples.map((s) => ({
      size: s.sizeBytes,
      seconds: s.medianMs / 1e3,
      predicted: predictCollectiveSeconds(link, s),
    }));
    rows.push(errorRow(samples[0].cluster, key.slice(samples[0].cluster.length + 1), [series]));
  }
  return {
    rows,
    assumedLayer,
    failing: rows.filter((row) => row.denoisedMedianError > thresholdMedianError),
    unfitted,
    thresholdMedianError,
  };
}

/** One measured row with the model's time for it. */
interface PredictedPoint extends SeriesPoint {
  predicted: number;
}

/** The error row of one group, from its series (rows that differ only in size, e.g. one model and TP). */
function errorRow(subject: string, what: string, series: readonly PredictedPoint[][]): CalibrationErrorRow {
  const errors = series.flat().map((p) => relativeError(p.predicted, p.seconds));
  const denoisedErrors = series.flatMap((points) => {
    const local = localMedianSeconds(points);
    return points.map((p, i) => relativeError(p.predicted, local[i]));
  });
  return {
    subject,
    what,
    samples: errors.length,
    medianError: median(errors),
    worstError: Math.max(...errors),
    denoisedMedianError: median(denoisedErrors),
    scatter: neighbourScatter(series),
  };
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatCalibrationReport(report: CalibrationReport): string {
  const window = 2 * LOCAL_MEDIAN_HALF_WINDOW + 1;
  const lines = [
    'median, worst: |model - measured| / measured over the rows;',
    `denoised: the median against each row's local median (the median of the ${window} rows nearest`,
    "  in size), the model's own bias once the rows' noise is out; the threshold applies to it;",
    "scatter: the rows' own median distance from the line through their neighbours",
    '',
    `${'gpu / cluster'.padEnd(22)}${'op / collective'.padEnd(28)}${'samples'.padStart(8)}${'median'.padStart(9)}${'worst'.padStart(9)}${'denoised'.padStart(10)}${'scatter'.padStart(9)}`,
  ];
  for (const row of report.rows) {
    const flag = row.denoisedMedianError > report.thresholdMedianError ? '  > threshold' : '';
    lines.push(
      `${row.subject.padEnd(22)}${row.what.padEnd(28)}${String(row.samples).padStart(8)}${percent(row.medianError).padStart(9)}${percent(row.worstError).padStart(9)}${percent(row.denoisedMedianError).padStart(10)}${percent(row.scatter).padStart(9)}${flag}`,
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
      ? `every denoised median error within ${percent(report.thresholdMedianError)}`
      : `${report.failing.length} group(s) with a denoised median error over ${percent(report.thresholdMedianError)}` +
          (report.unfitted.length > 0 ? `, ${report.unfitted.length} measured group(s) without a fit` : ''),
  );
  return `${lines.join('\n')}\n`;
}
