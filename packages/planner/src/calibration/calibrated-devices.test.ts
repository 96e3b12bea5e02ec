import { describe, expect, it } from 'vitest';
import { clusterPreset, DEVICE_PRESETS } from '../hardware.ts';
import {
  calibratedClusterPreset,
  calibratedDevice,
  calibratedIntraHostLink,
  layerLinearRates,
} from './calibrated-devices.ts';
import { shippedFittedProfiles } from './fitted-profiles.ts';

describe('calibrated devices', () => {
  const profiles = shippedFittedProfiles();

  it('turns the fitted A100 rates back into the measured rates', () => {
    const a100 = calibratedDevice('A100-80GB', profiles);
    const rates = layerLinearRates(profiles.gpus.a100);
    expect(a100.matmulFlopsPerSecond * a100.matmulEfficiency).toBeCloseTo(rates.matmulFlopsPerSecond, -6);
    expect(a100.memoryBytesPerSecond * a100.memoryEfficiency).toBeCloseTo(rates.bytesPerSecond, -3);
    // The layer's rates lie within the per-op large-working-set rates they summarise.
    const opRates = Object.values(profiles.gpus.a100.linear).map((r) => r.large.matmulFlopsPerSecond);
    expect(rates.matmulFlopsPerSecond).toBeGreaterThanOrEqual(Math.min(...opRates));
    expect(rates.matmulFlopsPerSecond).toBeLessThanOrEqual(Math.max(...opRates));
    expect(a100.matmulEfficiency).toBeGreaterThan(0.3);
    expect(a100.matmulEfficiency).toBeLessThan(1);
    expect(a100.layerLaunchSeconds).toBeGreaterThan(0);
  });

  it('derives A10 and L4 from the A40 fit by the spec-sheet ratios', () => {
    const a40 = layerLinearRates(profiles.gpus.a40);
    for (const name of ['A10', 'L4']) {
      const device = calibratedDevice(name, profiles);
      const preset = DEVICE_PRESETS[name];
      expect(device.matmulFlopsPerSecond * device.matmulEfficiency).toBeCloseTo(
        (a40.matmulFlopsPerSecond * preset.matmulFlopsPerSecond) / 149.7e12,
        -6,
      );
      expect(device.memoryBytesPerSecond * device.memoryEfficiency).toBeCloseTo(
        (a40.bytesPerSecond * preset.memoryBytesPerSecond) / 696e9,
        -3,
      );
    }
  });

  it('takes PCIe links from measured collectives, slower than NVLink', () => {
    const pcie = calibratedIntraHostLink('A100', false, profiles);
    const nvlink = calibratedIntraHostLink('A100', true, profiles);
    expect(pcie.bytesPerSecond).toBeLessThan(nvlink.bytesPerSecond / 3);
    expect(calibratedIntraHostLink('A10', false, profiles).bytesPerSecond).toBeLessThan(10e9);
    expect(() => calibratedDevice('TPU', profiles)).toThrow(/no fitted profile for device 'TPU'/);
  });

  it('builds cluster presets from the fits, keeping the layout of the spec', () => {
    const pcie = calibratedClusterPreset('2x4xA100', profiles);
    const assumed = clusterPreset('2x4xA100');
    expect({ hosts: pcie.numHosts, perHost: pcie.devicesPerHost }).toEqual({ hosts: 2, perHost: 4 });
    expect(pcie.device).toEqual(calibratedDevice('A100', profiles));
    expect(pcie.intraHostLink).toEqual(calibratedIntraHostLink('A100', false, profiles));
    expect(pcie.interHostLink).toEqual(assumed.interHostLink);
    const nvlink = calibratedClusterPreset('8xH100-nvlink', profiles);
    expect(nvlink.intraHostLink).toEqual(calibratedIntraHostLink('H100', true, profiles));
    expect(nvlink.device.matmulEfficiency).not.toBe(clusterPreset('8xH100-nvlink').device.matmulEfficiency);
  });
});
