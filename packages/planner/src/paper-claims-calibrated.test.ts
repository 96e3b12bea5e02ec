/**
 * The paper's A100 figure with the calibrated profiles `plan` uses by default: Llama-2-70B on
 * 8xA100, arxiv at full size (500 requests). The paper measured vLLM on PCIe at 0.61 of vLLM on
 * NVLink (issue 12's band: 0.50-0.72) and little gain from Seesaw on NVLink. The assumed presets
 * (0.6 / 0.8 efficiencies, an ideal 16 GB/s PCIe ring) gave 0.40 here and fail this test.
 */
import { describe, expect, it } from 'vitest';
import { calibratedClusterPreset } from './calibration/calibrated-devices.ts';
import { shippedFittedProfiles } from './calibration/fitted-profiles.ts';
import { describeResult, searchInline } from './paper-claims-support.ts';
import { loadWorkload } from './workloads.ts';

describe('paper claim, calibrated profiles: A100 70B arxiv, PCIe against NVLink', () => {
  it('static PCIe / static NVLink within 0.50-0.72; Seesaw gains on PCIe, hardly on NVLink', async () => {
    const workload = loadWorkload('arxiv', { maxModelLen: 4096 });
    expect(workload.requests).toHaveLength(500);
    const profiles = shippedFittedProfiles();
    const pcie = await searchInline('llama-2-70b', calibratedClusterPreset('8xA100', profiles), workload);
    const nvlink = await searchInline(
      'llama-2-70b',
      calibratedClusterPreset('8xA100-nvlink', profiles),
      workload,
    );
    const detail = `PCIe: ${describeResult(pcie)}; NVLink: ${describeResult(nvlink)}`;
    const ratio =
      (pcie.bestStatic?.totalTokensPerSecond ?? 0) / (nvlink.bestStatic?.totalTokensPerSecond ?? 1);
    console.log(`${detail}; static ratio ${ratio.toFixed(2)}`);
    expect(ratio, detail).toBeGreaterThan(0.5);
    expect(ratio, detail).toBeLessThan(0.72);
    expect(pcie.gain, detail).toBeGreaterThan(1.2);
    expect(nvlink.gain, detail).toBeLessThan(1.2);
  }, 120_000);
});
