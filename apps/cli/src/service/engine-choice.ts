/**
 * The engine configuration a batch asks for in its `metadata` (OpenAI metadata values are
 * strings): `{"seesaw_config": "T2"}` for a static layout, or `{"seesaw_prefill": "P2",
 * "seesaw_decode": "T2"}` for a Seesaw pair (prefill under one layout, decode under the other).
 * Without them the batch runs on the server's default engine. Checked when the batch is created,
 * so a bad value is a 400 naming the key rather than a batch that fails later.
 */
import { formatParallelConfig, numDevices, type ParallelConfig, parseParallelConfig } from '@seesaw/model';
import type { EngineSettings } from '../engine-session.ts';
import { checkSeesawPair, readSeesawTuning, type SeesawSettings } from '../seesaw-flags.ts';

export const CONFIG_KEY = 'seesaw_config';
export const PREFILL_KEY = 'seesaw_prefill';
export const DECODE_KEY = 'seesaw_decode';

export type EngineChoice =
  | { kind: 'static'; parallel: ParallelConfig }
  | { kind: 'seesaw'; prefill: ParallelConfig; decode: ParallelConfig };

export class EngineChoiceError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
  }
}

function parseLayout(metadata: Record<string, string>, key: string): ParallelConfig {
  try {
    return parseParallelConfig(metadata[key]);
  } catch (error) {
    throw new EngineChoiceError(`metadata.${key}: ${(error as Error).message}`, key);
  }
}

/** The batch's choice, or null for the server's default; throws EngineChoiceError naming the key. */
export function readEngineChoice(
  metadata: Record<string, string> | null,
  supportsSeesawPairs: boolean,
): EngineChoice | null {
  if (metadata === null) return null;
  const has = (key: string) => metadata[key] !== undefined;
  if (has(CONFIG_KEY)) {
    const stray = [PREFILL_KEY, DECODE_KEY].find(has);
    if (stray !== undefined) {
      throw new EngineChoiceError(
        `metadata.${stray} and metadata.${CONFIG_KEY} exclude each other: give ${CONFIG_KEY} for a ` +
          `static layout, or ${PREFILL_KEY} and ${DECODE_KEY} for a Seesaw pair`,
        stray,
      );
    }
    return { kind: 'static', parallel: parseLayout(metadata, CONFIG_KEY) };
  }
  if (!has(PREFILL_KEY) && !has(DECODE_KEY)) return null;
  const missing = has(PREFILL_KEY) ? DECODE_KEY : PREFILL_KEY;
  if (!has(missing)) {
    throw new EngineChoiceError(
      `metadata.${missing} is missing: a Seesaw pair needs both ${PREFILL_KEY} and ${DECODE_KEY}`,
      missing,
    );
  }
  const prefill = parseLayout(metadata, PREFILL_KEY);
  const decode = parseLayout(metadata, DECODE_KEY);
  const problem = checkSeesawPair(prefill, decode);
  if (problem !== null)
    throw new EngineChoiceError(`metadata.${PREFILL_KEY}/${DECODE_KEY}: ${problem}`, PREFILL_KEY);
  if (!supportsSeesawPairs) {
    throw new EngineChoiceError(
      `metadata.${PREFILL_KEY}/${DECODE_KEY}: Seesaw pairs need local device workers, or a ` +
        `cluster with each host's KV tier (--host-kv-memory SIZE on serve --cluster or coordinator --http); use ${CONFIG_KEY} here`,
      PREFILL_KEY,
    );
  }
  return { kind: 'seesaw', prefill, decode };
}

/** 'default', 'T2' or 'P2->T2': equal keys run on the same engine. */
export function engineChoiceName(choice: EngineChoice | null): string {
  if (choice === null) return 'default';
  if (choice.kind === 'static') return formatParallelConfig(choice.parallel);
  return `${formatParallelConfig(choice.prefill)}->${formatParallelConfig(choice.decode)}`;
}

/** Devices the choice occupies (both layouts of a pair use the same ones). */
export function engineChoiceDevices(choice: EngineChoice): number {
  return numDevices(choice.kind === 'static' ? choice.parallel : choice.prefill);
}

/**
 * The engine settings of a local server (`serve` without --cluster) for a batch's choice: its
 * layout on local device workers, with the server's threads, memory and host KV flags.
 */
export function localSettingsFor(base: EngineSettings, choice: EngineChoice | null): EngineSettings {
  if (choice === null) return base;
  const deviceMemoryBytes = base.cluster?.deviceMemoryBytes ?? base.seesaw?.deviceMemoryBytes;
  const memory = deviceMemoryBytes === undefined ? {} : { deviceMemoryBytes };
  if (choice.kind === 'static') {
    const cluster = { numDevices: numDevices(choice.parallel), parallel: choice.parallel, ...memory };
    return { ...base, seesaw: undefined, cluster };
  }
  // The knobs the Seesaw scheduler replaces (as readSeesawSettings refuses them next to --prefill).
  const { maxNumBatchedTokens: _tokens, preemptionMode: _preemption, kvCacheBytes: _kv, ...rest } = base;
  const seesaw: SeesawSettings = {
    ...(base.seesaw ?? readSeesawTuning({})),
    prefill: choice.prefill,
    decode: choice.decode,
    numDevices: numDevices(choice.prefill),
    ...memory,
  };
  return { ...rest, cluster: undefined, seesaw };
}
