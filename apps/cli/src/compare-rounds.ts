/**
 * `bench --compare ... --rounds N`: every configuration run N times, interleaved round by round,
 * because these machines drift by more than the margins a comparison judges (one sitting's static
 * T2 ran 27% faster than the next one's). Runs of the same round see nearly the same machine, so
 * the ratio inside a round (a run against the round's best static layout) is the steadier figure;
 * its median over the rounds is what the table calls the share of best static by rounds.
 */
import { bestStaticTokensPerSecond, type CompareRow } from './compare-table.ts';

/** Each round's rows by run label; a run that failed in a round is absent from that round. */
export type CompareRounds = ReadonlyArray<ReadonlyMap<string, CompareRow>>;

/**
 * The order of the runs in round `round` (0-based): the list rotated by the round, so that over
 * the rounds no configuration always runs first (on a machine still settling) or last.
 */
export function roundOrder(numRuns: number, round: number): number[] {
  return Array.from({ length: numRuns }, (_, index) => (index + round) % numRuns);
}

/** The middle value; for an even count the lower of the two middle ones (no run is invented). */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) throw new Error('lowerMedian of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** A label's rows in round order. */
function rowsOf(rounds: CompareRounds, label: string): CompareRow[] {
  return rounds.flatMap((round) => {
    const row = round.get(label);
    return row === undefined ? [] : [row];
  });
}

/**
 * One row per label (in the given order, labels with no successful run left out): the run whose
 * total tokens/s is the lower median of its rounds, so every figure in a column is one real run's.
 */
export function medianRows(labels: readonly string[], rounds: CompareRounds): CompareRow[] {
  return labels.flatMap((label) => {
    const rows = rowsOf(rounds, label);
    if (rows.length === 0) return [];
    const median = lowerMedian(rows.map((row) => row.totalTokensPerSecond));
    return [rows.find((row) => row.totalTokensPerSecond === median) as CompareRow];
  });
}

/** A label's total tokens/s by round (null: the run failed in that round). */
export function tokensPerSecondByRound(rounds: CompareRounds, label: string): Array<number | null> {
  return rounds.map((round) => round.get(label)?.totalTokensPerSecond ?? null);
}

/** A label's total tokens/s against its own round's best static layout, by round (null: it or every static run failed). */
export function sharesOfBestStatic(rounds: CompareRounds, label: string): Array<number | null> {
  return rounds.map((round) => {
    const row = round.get(label);
    const best = bestStaticTokensPerSecond([...round.values()]);
    return row === undefined || best === null || best <= 0 ? null : row.totalTokensPerSecond / best;
  });
}

/** The lower median of a label's per-round shares of best static; null when no round had a static run. */
export function medianShareOfBestStatic(rounds: CompareRounds, label: string): number | null {
  const shares = sharesOfBestStatic(rounds, label).filter((share): share is number => share !== null);
  return shares.length === 0 ? null : lowerMedian(shares);
}

/** The table's extra lines for a comparison of several rounds: each round's figures, then the median share. */
export function roundTableLines(
  rounds: CompareRounds,
): Array<{ label: string; cell: (row: CompareRow) => string }> {
  const joined = (values: Array<number | null>, digits: number, unit: string) =>
    values.map((value) => (value === null ? '-' : `${value.toFixed(digits)}${unit}`)).join(' ');
  return [
    {
      label: `Total tokens/s in rounds 1-${rounds.length}`,
      cell: (row) => joined(tokensPerSecondByRound(rounds, row.label), 0, ''),
    },
    {
      label: 'Share of best static in each round',
      cell: (row) => joined(sharesOfBestStatic(rounds, row.label), 2, 'x'),
    },
    {
      label: 'Share of best static, median of rounds',
      cell: (row) => {
        const share = medianShareOfBestStatic(rounds, row.label);
        return share === null ? '-' : `${share.toFixed(2)}x`;
      },
    },
  ];
}
