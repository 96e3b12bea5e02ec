import { median } from './fit-minimize.ts';

/** One measured row of a series: its size coordinate and its measured time. */
export interface SeriesPoint {
  size: number;
  seconds: number;
}

/**
 * How far the measured rows of a table stray from their own neighbours: for each row inside a
 * series ordered by size, |t - lerp(previous, next)| / t, and the median over all rows. A
 * smooth model cannot be expected to come much closer to the rows than this, so `validate`
 * prints it beside the model's error: a group whose error is near its scatter is limited by
 * its data, not by the model's form. (Neighbours carry noise too, so this overstates the
 * noise of one row by up to sqrt(1.5) for independent errors.)
 */
export function neighbourScatter(series: readonly (readonly SeriesPoint[])[]): number {
  const deviations: number[] = [];
  for (const points of series) {
    const sorted = [...points].sort((a, b) => a.size - b.size);
    for (let i = 1; i + 1 < sorted.length; i++) {
      const [before, row, after] = [sorted[i - 1], sorted[i], sorted[i + 1]];
      if (after.size === before.size) continue;
      const share = (row.size - before.size) / (after.size - before.size);
      const between = before.seconds + (after.seconds - before.seconds) * share;
      deviations.push(Math.abs(row.seconds - between) / row.seconds);
    }
  }
  return median(deviations);
}

/** Rows either side of a row whose times `localMedianSeconds` takes the median of. */
export const LOCAL_MEDIAN_HALF_WINDOW = 5;

/**
 * Each row's time with the row-to-row noise of its series taken out: the median of the measured
 * times of the `halfWindow` rows either side of it in size order (fewer at the series' ends),
 * returned in the order given. A running median keeps the real steps of a table (a protocol
 * switch, a tile-count jump) where a running mean would smear them, and lets a single slow or
 * fast row count for nothing. Comparing a model with these times measures its bias along the
 * table; comparing it with the rows themselves adds the rows' own noise on top.
 */
export function localMedianSeconds(
  points: readonly SeriesPoint[],
  halfWindow = LOCAL_MEDIAN_HALF_WINDOW,
): number[] {
  const order = points.map((_, i) => i).sort((a, b) => points[a].size - points[b].size);
  const result = new Array<number>(points.length);
  order.forEach((index, rank) => {
    const window = order.slice(Math.max(0, rank - halfWindow), rank + halfWindow + 1);
    result[index] = median(window.map((i) => points[i].seconds));
  });
  return result;
}
