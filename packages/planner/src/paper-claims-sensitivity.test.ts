/**
 * Seesaw paper claims about where the gain comes from (design/seesaw-paper.md):
 * - A100, 70B, 8 GPUs, arxiv: with NVLink, re-sharding gains little or nothing; on PCIe the
 *   static best drops to about 0.6 of NVLink's and Seesaw recovers most of it (0.89).
 * - 70B on 8x A10, prompts of 3000 tokens, decode:prefill length ratio 0 -> 0.3: the best
 *   static configuration moves from PP-heavy to TP-heavy while the Seesaw pair stays best.
 * - All-reduce bandwidth scaled 0.1x-50x of PCIe: Seesaw stays ahead. Our model agrees up
 *   to 1x and finds a tie (within the re-shard cost) from 10x on: see
 *   docs/planner-validation.md for why.
 */
import { describe, expect, it } from 'vitest';
import { clusterPreset, withScaledDeviceLinks } from './hardware.ts';
import { describeResult, searchInline } from './paper-claims-support.ts';
import { constantWorkload, loadWorkload } from './workloads.ts';

describe('paper claims: sensitivity', () => {
  it('A100 70B arxiv: NVLink gains little; PCIe static ~0.6 of NVLink, Seesaw-PCIe recovers most', async () => {
    const workload = loadWorkload('arxiv', { numRequests: 80, seed: 0 });
    const nvlink = await searchInline('llama-2-70b', clusterPreset('8xA100-nvlink'), workload);
    const pcie = await searchInline('llama-2-70b', clusterPreset('8xA100'), workload);
    expect(nvlink.gain, describeResult(nvlink)).toBeLessThan(1.1);
    expect(nvlink.gain).toBeGreaterThan(0.95);
    const base = nvlink.bestStatic!.totalTokensPerSecond;
    // Paper: 0.61 and 0.89; tolerance 0.15 each.
    expect(pcie.bestStatic!.totalTokensPerSecond / base, describeResult(pcie)).toBeGreaterThan(0.46);
    expect(pcie.bestStatic!.totalTokensPerSecond / base).toBeLessThan(0.76);
    expect(pcie.bestPair!.totalTokensPerSecond / base).toBeGreaterThan(0.74);
    expect(pcie.bestPair!.totalTokensPerSecond / base).toBeLessThan(1.04);
  });

  it('70B 8xA10, input 3000: best static goes PP-heavy -> TP-heavy as outputs grow; Seesaw stays best', async () => {
    const cluster = clusterPreset('8xA10');
    const ratios = [0, 0.1, 0.2, 0.3];
    const pp: number[] = [];
    for (const ratio of ratios) {
      const workload = constantWorkload(150, 3000, Math.max(1, Math.round(3000 * ratio)));
      const result = await searchInline('llama-2-70b', cluster, workload);
      const best = result.statics[0].label;
      pp.push(Number(/P(\d+)/.exec(best)?.[1] ?? 1));
      // With no decode there is nothing to gain (the pair runs the best prefill config plus a
      // switch): a tie, within 5% on 150 requests (the last prefill steps pipeline less well
      // under SeesawScheduler: about 3% here, 0.1% at 500 requests); with decode the pair wins.
      if (ratio === 0) expect(result.gain, describeResult(result)).toBeGreaterThan(0.95);
      else expect(result.gain, describeResult(result)).toBeGreaterThan(1.1);
    }
    expect(pp[0]).toBeGreaterThanOrEqual(4);
    expect(pp[pp.length - 1]).toBeLessThanOrEqual(2);
    for (let i = 1; i < pp.length; i++) expect(pp[i]).toBeLessThanOrEqual(pp[i - 1]);
  });

  it('CodeLlama-34B 8xA10 arxiv, all-reduce bandwidth 0.1x..50x: Seesaw ahead up to 1x, never behind by more than 3%', async () => {
    const workload = loadWorkload('arxiv', { numRequests: 60, seed: 0 });
    for (const factor of [0.1, 1, 10, 50]) {
      const result = await searchInline(
        'codellama-34b',
        withScaledDeviceLinks(clusterPreset('8xA10'), factor),
        workload,
      );
      if (factor <= 1) expect(result.gain, `x${factor}: ${describeResult(result)}`).toBeGreaterThan(1.15);
      else expect(result.gain, `x${factor}: ${describeResult(result)}`).toBeGreaterThan(0.97);
    }
  });
});
