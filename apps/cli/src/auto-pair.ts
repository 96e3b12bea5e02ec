/**
 * `bench --prefill auto --decode auto --profile FILE`: runs what the planner's simulator finds
 * fastest overall for this model on the measured machine (`seesaw profile`) and this very
 * workload (the bench requests' prompt and output lengths): a (prefill, decode) pair, or a
 * static layout (as --config) when no pair beats it. The choice is logged with its simulated
 * throughput and the runner-up kind, then the run goes on as if it had been given.
 */
import { loadModelConfig, resolveKvDtype } from '@seesaw/model';
import { ENGINE_DEFAULTS } from '@seesaw/protocol';
import { type FlagValues, optionalInteger, optionalString, UsageError } from './args.ts';
import { readKvDtype } from './host-kv-flags.ts';

/** True for --prefill auto --decode auto; a usage error when only one of them is auto. */
export function isAutoPair(values: FlagValues): boolean {
  const isPrefillAuto = values.prefill === 'auto';
  const isDecodeAuto = values.decode === 'auto';
  if (isPrefillAuto !== isDecodeAuto) {
    throw new UsageError('--prefill auto needs --decode auto (and the other way round)');
  }
  if (!isPrefillAuto && values.profile !== undefined) {
    throw new UsageError('--profile applies only to --prefill auto --decode auto');
  }
  return isPrefillAuto;
}

export interface AutoPairWorkload {
  promptTokenIds: readonly number[];
  sampling: { maxTokens: number };
}

/**
 * Picks the pair and writes it into values.prefill / values.decode. The device count is the
 * profile's; --devices, if given, must agree.
 */
export async function resolveAutoPair(
  values: FlagValues,
  modelDir: string,
  requests: readonly AutoPairWorkload[],
  log: (line: string) => void,
): Promise<void> {
  const profilePath = optionalString(values, 'profile');
  if (profilePath === undefined) {
    throw new UsageError(
      "--prefill auto --decode auto needs --profile FILE (write one with 'seesaw profile')",
    );
  }
  // Loaded only here: the planner (and its worker pool) is not needed for any other bench.
  const { chooseBestConfiguration, clusterNumDevices, dtypeBytesOf, loadClusterProfile } = await import(
    '@seesaw/planner'
  );
  const cluster = loadClusterProfile(profilePath);
  const numDevices = clusterNumDevices(cluster);
  const numDeviceFlag = optionalInteger(values, 'devices', { min: 1, max: 4096 });
  if (numDeviceFlag !== undefined && numDeviceFlag !== numDevices) {
    throw new UsageError(
      `--devices ${numDeviceFlag} does not match the ${numDevices} devices of ${profilePath}`,
    );
  }
  const config = loadModelConfig(modelDir);
  const workload = {
    name: 'bench requests',
    requests: requests.map((request) => ({
      promptTokens: request.promptTokenIds.length,
      outputTokens: Math.max(1, request.sampling.maxTokens),
    })),
  };
  const startMs = performance.now();
  const choice = await chooseBestConfiguration(cluster, config, numDevices, workload, {
    simulation: {
      dtypeBytes: dtypeBytesOf(config),
      // The planner sizes KV blocks and host slots with the dtype this run will use.
      kvBytesPerElement:
        resolveKvDtype(readKvDtype(values) ?? ENGINE_DEFAULTS.kvDtype, modelDir) === 'f32' ? 4 : 2,
      maxNumBatchedTokens: optionalInteger(values, 'prefill-token-budget', { min: 1 }),
      maxNumSeqs: optionalInteger(values, 'max-num-seqs', { min: 1 }),
    },
  });
  if (choice === null) {
    throw new Error(`no layout of ${numDevices} devices fits this model on ${profilePath}`);
  }
  const searched = `searched in ${((performance.now() - startMs) / 1000).toFixed(1)} s`;
  const rate = (report: { totalTokensPerSecond: number }) =>
    `${report.totalTokensPerSecond.toFixed(2)} total tokens/s`;
  if (choice.kind === 'static') {
    // The planner's overall best is static: run it as --config, and say why no pair.
    log(
      `auto: static ${choice.config}, the planner's best overall (simulated ${rate(choice.report)} on ${cluster.name}; ` +
        `best pair ${choice.bestPair === null ? 'none fits' : `${choice.bestPair.label} ${rate(choice.bestPair)}`}; ${searched})`,
    );
    values.prefill = undefined;
    values.decode = undefined;
    values.config = choice.config;
    values.devices = String(numDevices);
    return;
  }
  log(
    `auto: prefill ${choice.prefill}, decode ${choice.decode}, the planner's best overall (simulated ` +
      `${rate(choice.report)} on ${cluster.name}; best static ` +
      `${choice.bestStatic === null ? 'none fits' : `${choice.bestStatic.label} ${rate(choice.bestStatic)}`}; ${searched})`,
  );
  values.prefill = choice.prefill;
  values.decode = choice.decode;
}
