/**
 * Seesaw --prefill P2 --decode T2 on the WebGPU backend with a host KV tier of a few slots, so
 * every prefill step writes its sequences back and decode prefetches them: greedy tokens equal
 * to the CPU engine's on the same Seesaw run (whose write-backs go layer by layer), and the
 * GPU devices' own trace spans show each prefill step's write-backs starting before its compute
 * ends (posted layer group by layer group as the step runs, not after it). Skipped, with the
 * reason printed, when the engine or a WebGPU adapter is unavailable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelConfig } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeEvents, readTrace, runSeesaw, trackNames } from '../test/e2e-test-support.ts';
import {
  findWebGpuUnavailableReason,
  generateTokenIdModel,
  outputTokens,
  promptLines,
  seedForTest,
} from '../test/webgpu-test-support.ts';

const unavailableReason = await findWebGpuUnavailableReason();
if (unavailableReason !== null) console.log(`skipping the WebGPU write-back tests: ${unavailableReason}`);

/**
 * 320 KiB of host KV is 5 slots of 16 tokens (tiny: 4 layers x K,V x 4 KV heads x 32 x f32 per
 * token): the longest prompt with its output needs 4, so prefill and decode take turns often.
 */
const SEESAW_TIGHT_TIER = ['--prefill', 'P2', '--decode', 'T2', '--host-kv-memory', '320KiB'];

describe.skipIf(unavailableReason !== null)(
  'Seesaw on WebGPU: KV write-backs overlapped with prefill',
  () => {
    let dir = '';
    let modelDir = '';
    let inputPath = '';

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-write-backs-'));
      modelDir = join(dir, 'tiny');
      await generateTokenIdModel(modelDir, 21, 'f32');
      inputPath = join(dir, 'prompts.jsonl');
      // Greedy lines only: seeded sampling may differ where GPU and CPU logits differ in the last bits.
      writeFileSync(inputPath, promptLines(seedForTest(), loadModelConfig(modelDir).vocabSize, []));
    }, 60_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("P2 -> T2 with a tight host tier: the CPU engine's tokens, write-backs starting inside the prefill compute", async () => {
      const cpuPath = join(dir, 'cpu.jsonl');
      const cpu = await runSeesaw([
        ...['run', '--model', modelDir, '--input', inputPath, '--output', cpuPath, '--threads', '1'],
        ...SEESAW_TIGHT_TIER,
      ]);
      expect(cpu.status, cpu.stderr).toBe(0);

      const gpuPath = join(dir, 'gpu.jsonl');
      const tracePath = join(dir, 'gpu-trace.json');
      const gpu = await runSeesaw([
        ...['run', '--model', modelDir, '--input', inputPath, '--output', gpuPath, '--backend', 'webgpu'],
        ...['--devices', '2', '--gpus-per-adapter', '2', '--device-memory', '16MiB'],
        ...[...SEESAW_TIGHT_TIER, '--trace', tracePath],
      ]);
      expect(gpu.status, gpu.stderr).toBe(0);
      expect(Number(/Phases: (\d+) switch/.exec(gpu.stdout)?.[1])).toBeGreaterThanOrEqual(2);
      const tokens = outputTokens(gpuPath);
      expect(tokens.size).toBe(4);
      expect(tokens).toEqual(outputTokens(cpuPath));

      // Each device's own spans (its clock, mapped): per (device track, step) compute and write-back.
      const trace = readTrace(tracePath);
      const kvTracks = new Set(
        trace.traceEvents
          .filter((e) => e.ph === 'M' && e.name === 'thread_name')
          .filter((e) => /device \d+ kv$/.test((e.args as { name: string }).name))
          .map((e) => e.tid),
      );
      expect(kvTracks.size, trackNames(trace).join(', ')).toBe(2);
      const events = completeEvents(trace).filter((e) => kvTracks.has(e.tid));
      const writeBacks = events.filter((e) => e.name === 'write-back');
      expect(writeBacks.length).toBeGreaterThan(0);
      for (const writeBack of writeBacks) {
        const compute = events.find(
          (e) => e.name === 'compute' && e.tid === writeBack.tid && e.args.stepId === writeBack.args.stepId,
        );
        expect(compute, `compute of step ${writeBack.args.stepId}`).toBeDefined();
        // Started (its first layer group submitted) while the step still computed.
        expect(writeBack.ts).toBeLessThan(compute!.ts + compute!.dur);
      }
    }, 180_000);
  },
);
