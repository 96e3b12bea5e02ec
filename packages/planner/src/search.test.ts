import { describe, expect, it } from 'vitest';
import { formatGainLine, formatSearchResult } from './format-report.ts';
import { clusterPreset } from './hardware.ts';
import { modelPreset } from './model-presets.ts';
import { chooseSeesawPair, searchConfigurations } from './search.ts';
import { parallelConfigsOver, searchSpace } from './search-space.ts';
import { loadWorkload } from './workloads.ts';

describe('search space', () => {
  it('enumerates every DP x TP x PP over 8 devices', () => {
    const names = parallelConfigsOver(8).map(({ dp, tp, pp }) => `${dp}.${tp}.${pp}`);
    expect(names).toHaveLength(10);
    expect(new Set(names).size).toBe(10);
    for (const { dp, tp, pp } of parallelConfigsOver(8)) expect(dp * tp * pp).toBe(8);
  });

  it('70B on 8xA10: only DP 1 fits; pairs are ordered, distinct, equal DP', () => {
    const space = searchSpace(modelPreset('llama-2-70b'), clusterPreset('8xA10'));
    expect(space.statics.map((t) => (t.kind === 'static' ? t.parallel.dp : 0))).toEqual([1, 1, 1, 1]);
    expect(space.pairs).toHaveLength(12);
    expect(space.excluded.map((e) => e.reason).join()).toMatch(/no device memory for KV/);
  });

  it('TP must divide the KV heads (llama-3-15b: 8 KV heads, 40 heads) and PP the layers', () => {
    const space = searchSpace(modelPreset('llama-3-15b'), clusterPreset('1x16xH100'));
    const labels = space.excluded.map((e) => e.label);
    expect(labels).toContain('T16');
    expect(space.excluded.find((e) => e.label === 'T16')!.reason).toMatch(/KV heads do not divide by TP 16/);
  });
});

describe('searchConfigurations', () => {
  const model = modelPreset('llama-2-70b');
  const cluster = clusterPreset('8xL4');
  const workload = loadWorkload('arxiv', { numRequests: 24, seed: 1 });

  it('the worker pool gives exactly the inline results, and pruning keeps the best of each list', async () => {
    const full = await searchConfigurations(model, cluster, workload, {
      numThreads: 0,
      pruneFactor: Number.POSITIVE_INFINITY,
    });
    const pooled = await searchConfigurations(model, cluster, workload, {
      numThreads: 2,
      pruneFactor: Number.POSITIVE_INFINITY,
    });
    expect(pooled.statics.map((r) => [r.label, r.elapsedSeconds])).toEqual(
      full.statics.map((r) => [r.label, r.elapsedSeconds]),
    );
    expect(pooled.pairs.map((r) => [r.label, r.elapsedSeconds])).toEqual(
      full.pairs.map((r) => [r.label, r.elapsedSeconds]),
    );
    const pruned = await searchConfigurations(model, cluster, workload, { numThreads: 0, pruneFactor: 1.2 });
    expect(pruned.bestStatic!.label).toBe(full.bestStatic!.label);
    expect(pruned.bestPair!.label).toBe(full.bestPair!.label);
    expect(pruned.gain).toBe(full.gain);
    // Everything pruned was at least 1.2x slower than the best of its list.
    for (const entry of pruned.excluded.filter((e) => e.reason.startsWith('slower'))) {
      const report = [...full.statics, ...full.pairs].find((r) => r.label === entry.label)!;
      const best = entry.label.includes('->') ? full.bestPair! : full.bestStatic!;
      expect(report.elapsedSeconds).toBeGreaterThan(1.2 * best.elapsedSeconds);
    }
    expect(formatGainLine(full)).toMatch(
      new RegExp(
        `^gain: \\d+\\.\\d\\dx \\(best pair ${full.bestPair!.label} vs best static ${full.bestStatic!.label}\\)$`,
      ),
    );
    const text = formatSearchResult(full, 3);
    expect(text.trimEnd().split('\n').at(-1)).toBe(formatGainLine(full));
  });

  it('chooseSeesawPair returns the best pair as flag values', async () => {
    const choice = await chooseSeesawPair(cluster, model, 8, workload, { numThreads: 0 });
    expect(choice).not.toBeNull();
    expect(`${choice!.prefill}->${choice!.decode}`).toBe(choice!.report.label);
    // Four devices of the same kind: 70B does not fit in 4 x 24 GiB.
    expect(await chooseSeesawPair(cluster, model, 4, workload, { numThreads: 0 })).toBeNull();
  });
});
