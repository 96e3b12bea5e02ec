import { describe, expect, it } from 'vitest';
import { DEVICE_PRESETS } from '../hardware.ts';
import { calibratedDevice, calibratedIntraHostLink } from './calibrated-devices.ts';
import { shippedFittedProfiles } from './fitted-profiles.ts';

describe('calibrated devices', () => {
  const profiles = shippedFittedProfiles();

  it('turns the fitted A100 rates back into the measured rates', () => {
    const a100 = calibratedDevice('A100-80GB', profiles);
    expect(a100.matmulFlopsPerSecond * a100.matmulEfficiency).toBeCloseTo(
      profiles.gpus.a100.matmulFlopsPerSecond,
      -6,
    );
    expect(a100.memoryBytesPerSecond * a100.memoryEfficiency).toBeCloseTo(
      profiles.gpus.a100.linearBytesPerSecond,
      -3,
    );
    expect(a100.matmulEfficiency).toBeGreaterThan(0.3);
    expect(a100.matmulEfficiency).toBeLessThan(1);
    expect(a100.layerLaunchSeconds).toBeGreaterThan(0);
  });

  it('derives A10 and L4 from the A40 fit by the spec-sheet ratios', () => {
    const a40 = profiles.gpus.a40;
    for (const name of ['A10', 'L4']) {
      const device = calibratedDevice(name, profiles);
      const preset = DEVICE_PRESETS[name];
      expect(device.matmulFlopsPerSecond * device.matmulEfficiency).toBeCloseTo(
        (a40.matmulFlopsPerSecond * preset.matmulFlopsPerSecond) / 149.7e12,
        -6,
      );
      expect(device.memoryBytesPerSecond * device.memoryEfficiency).toBeCloseTo(
        (a40.linearBytesPerSecond * preset.memoryBytesPerSecond) / 696e9,
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
});
