/**
 * `seesaw profile`: measures this machine (the real kernels, the shared-memory all-reduce and
 * memory copies) as a cluster profile JSON that `seesaw plan|simulate --profile FILE` read.
 */
import { writeFileSync } from 'node:fs';
import { measureProfile } from '@seesaw/planner/profile';
import { optionalByteSize, optionalInteger, parseFlags, requiredString } from '../args.ts';
import { readBackendSettings } from '../backend-flags.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { withWebGpuDevice } from '../webgpu-profile.ts';

export const PROFILE_FLAGS = commandFlagSpec('profile');

/** '1:4.7 8:32 ...' from measurements named PREFIX<rows>Rows. */
function curve(measurements: Record<string, number>, prefix: string): string {
  return Object.entries(measurements)
    .filter(([name]) => name.startsWith(prefix))
    .map(([name, value]) => `${name.slice(prefix.length, -'Rows'.length)}:${value.toFixed(0)}`)
    .join(' ');
}

/** The WebGPU kernels' figures as fractions of the adapter's FMA peak and copy bandwidth; '' on the CPU backend. */
function webGpuLine(m: Record<string, number>): string {
  if (m.webgpuFmaPeakGflops === undefined) return '';
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return (
    `  WebGPU: FMA peak ${m.webgpuFmaPeakGflops.toFixed(1)} GFLOP/s, copy ${m.webgpuCopyGBps.toFixed(1)} GB/s; ` +
    `matmul ${m.webgpuMatmulGflops.toFixed(1)} GFLOP/s (${pct(m.webgpuMatmulGflops / m.webgpuFmaPeakGflops)} of peak), ` +
    `decode GEMV ${m.webgpuGemvGBps.toFixed(1)} GB/s (${pct(m.webgpuGemvGBps / m.webgpuCopyGBps)} of copy)\n`
  );
}

export async function profileCommand(argv: string[]): Promise<number> {
  const values = parseFlags('profile', argv, PROFILE_FLAGS);
  const out = requiredString(values, 'out');
  const devices = optionalInteger(values, 'devices', { min: 1, max: 64 });
  const threads = optionalInteger(values, 'threads', { min: 1, max: 256 });
  const { backend } = readBackendSettings(values);
  const hostProfile = await measureProfile({
    devices,
    threadsPerDevice: threads,
    deviceMemoryBytes: optionalByteSize(values, 'device-memory'),
    hostMemoryBytesPerDevice: optionalByteSize(values, 'host-memory'),
    quick: values.quick === true,
  });
  // --quick on the GPU backend also means the small sizes a software adapter finishes in seconds.
  const profile =
    backend === 'webgpu' ? await withWebGpuDevice(hostProfile, values.quick === true) : hostProfile;
  writeFileSync(out, `${JSON.stringify(profile, null, 2)}\n`);
  const m = profile.measurements;
  process.stdout.write(
    `profile of ${profile.name}:\n` +
      `  matmul ${m.matmulGflops.toFixed(1)} GFLOP/s, weight streaming ${m.weightStreamGBps.toFixed(1)} GB/s, ` +
      `attention ${m.attentionGflops.toFixed(1)} GFLOP/s\n` +
      `  memory copy ${m.copyGBps.toFixed(1)} GB/s, all-reduce ${m.allReduceGBps.toFixed(2)} GB/s + ` +
      `${m.allReduceLatencyMicros.toFixed(0)} us\n` +
      `  with every device worker busy: matmul ${curve(m, 'matmulGflopsAt')} GFLOP/s by rows; ` +
      `attention ${m.decodeAttentionGflops.toFixed(1)} (decode) / ${m.prefillAttentionGflops.toFixed(1)} (prefill) GFLOP/s; ` +
      `sampling ${m.sampleNanosPerLogit.toFixed(0)} ns/logit\n` +
      `  one worker busy: matmul ${curve(m, 'aloneMatmulGflopsAt')} GFLOP/s by rows\n` +
      `  weight pieces peer-to-peer ${m.reshardPeerGBps.toFixed(2)} GB/s, from the host's checkpoint ` +
      `${m.reshardHostReadGBps.toFixed(2)} GB/s, assembled into touched memory ${m.reshardAssemblyGBps.toFixed(2)} GB/s\n` +
      `  KV to and from the kv-store ${m.kvStoreCopyGBps.toFixed(2)} GB/s + ${m.kvStoreCopyLatencyMicros.toFixed(0)} us; ` +
      `first write into untouched memory (KV blocks, host slots) ${m.kvFirstTouchGBps.toFixed(2)} GB/s\n` +
      webGpuLine(m) +
      `wrote ${out}\n`,
  );
  return 0;
}
