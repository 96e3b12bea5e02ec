import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.ts';
import { expiresAtSeconds, parseDurationMs } from './completion-window.ts';
import { EngineChoiceError, engineChoiceName, localSettingsFor, readEngineChoice } from './engine-choice.ts';

describe('a batch engine choice from its metadata', () => {
  it('reads a static layout, a Seesaw pair, or the default', () => {
    expect(readEngineChoice(null, true)).toBeNull();
    expect(readEngineChoice({ team: 'a' }, true)).toBeNull();
    const t2 = readEngineChoice({ seesaw_config: 'T2' }, false);
    expect(engineChoiceName(t2)).toBe('T2');
    const pair = readEngineChoice({ seesaw_prefill: 'P2', seesaw_decode: 'T2' }, true);
    expect(engineChoiceName(pair)).toBe('P2->T2');
  });

  it('names the key of every bad value', () => {
    const keyOf = (metadata: Record<string, string>, supportsPairs = true) => {
      try {
        readEngineChoice(metadata, supportsPairs);
      } catch (error) {
        expect(error).toBeInstanceOf(EngineChoiceError);
        return (error as EngineChoiceError).key;
      }
      throw new Error(`${JSON.stringify(metadata)} was accepted`);
    };
    expect(keyOf({ seesaw_config: 'X9' })).toBe('seesaw_config');
    expect(keyOf({ seesaw_config: 'T2', seesaw_decode: 'T2' })).toBe('seesaw_decode');
    expect(keyOf({ seesaw_prefill: 'P2' })).toBe('seesaw_decode');
    expect(keyOf({ seesaw_decode: 'T2' })).toBe('seesaw_prefill');
    expect(keyOf({ seesaw_prefill: 'P2', seesaw_decode: 'T4' })).toBe('seesaw_prefill');
    expect(keyOf({ seesaw_prefill: 'P2', seesaw_decode: 'T2' }, false)).toBe('seesaw_prefill');
  });

  it('turns a choice into local engine settings, keeping the server flags', () => {
    const base = { numThreads: 2, maxNumSeqs: 8, maxNumBatchedTokens: 256, hostKvBytes: 1 << 20 };
    expect(localSettingsFor(base, null)).toBe(base);
    const staticSettings = localSettingsFor(base, readEngineChoice({ seesaw_config: 'D2T2' }, true));
    expect(staticSettings.cluster).toEqual({ numDevices: 4, parallel: { dp: 2, tp: 2, pp: 1 } });
    expect(staticSettings.seesaw).toBeUndefined();
    expect(staticSettings.maxNumSeqs).toBe(8);
    const pair = localSettingsFor(
      base,
      readEngineChoice({ seesaw_prefill: 'P2', seesaw_decode: 'T2' }, true),
    );
    expect(pair.cluster).toBeUndefined();
    expect(pair.seesaw?.numDevices).toBe(2);
    expect(pair.maxNumBatchedTokens).toBeUndefined();
    expect(pair.hostKvBytes).toBe(1 << 20);
  });
});

describe('completion windows', () => {
  it('parses durations and refuses anything else, naming the flag', () => {
    expect(parseDurationMs('500ms', '--x')).toBe(500);
    expect(parseDurationMs('2s', '--x')).toBe(2000);
    expect(parseDurationMs('30m', '--x')).toBe(1_800_000);
    expect(parseDurationMs('24h', '--x')).toBe(86_400_000);
    for (const bad of ['0s', '2', '1.5s', '-1s', '2d', '']) {
      expect(() => parseDurationMs(bad, '--batch-window-override')).toThrow(UsageError);
      expect(() => parseDurationMs(bad, '--batch-window-override')).toThrow(/--batch-window-override/);
    }
  });

  it('rounds the deadline up to whole seconds', () => {
    expect(expiresAtSeconds(2000, 10_500)).toBe(13);
    expect(expiresAtSeconds(2000, 10_000)).toBe(12);
  });
});
