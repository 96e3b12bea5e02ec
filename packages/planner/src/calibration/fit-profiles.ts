import { type LinkProfile, linkBytesPerSecond } from '../hardware.ts';
import {
  type ComputeOp,
  type ComputeSample,
  ELEMENTWISE_OPS,
  type ElementwiseOp,
  LINEAR_OPS,
  type LinearOp,
  type NetworkSample,
} from './calibration-tables.ts';
import { minimizePositive } from './fit-minimize.ts';
import {
  type GpuOpFit,
  isLinearOp,
  type LinearRates,
  type LinkRate,
  layerLinearWork,
  type OpWork,
  opWork,
  predictElementwiseSeconds,
  predictLayerLinearSeconds,
  predictLinearSeconds,
} from './gpu-op-model.ts';
import { fitSizeRegimes, logErrorLoss, type SizeRegimes } from './size-regimes.ts';

/** 0.1 us: below any measured launch or collective latency; keeps the fit's fixed costs off 0. */
const MIN_LAUNCH_SECONDS = 1e-7;

const usable = (sample: { medianMs: number }) => sample.medianMs > 0;

interface OpRow {
  op: ComputeOp;
  work: OpWork;
  seconds: number;
}

const toLinearRates = ([
  matmulFlopsPerSecond,
  bytesPerSecond,
  launchSeconds,
]: readonly number[]): LinearRates => ({
  matmulFlopsPerSecond,
  bytesPerSecond,
  launchSeconds,
});
const toLinkRate = ([bytesPerSecond, launchSeconds]: readonly number[]): LinkRate => ({
  bytesPerSecond,
  launchSeconds,
});

function mapRegimes<A, B>(regimes: SizeRegimes<A>, f: (a: A) => B): SizeRegimes<B> {
  return { small: f(regimes.small), large: f(regimes.large), largeFromBytes: regimes.largeFromBytes };
}

/** The measured linear ops of one table row (model, token count, TP degree), summed. */
export interface LayerLinearSample {
  model: string;
  tp: number;
  work: OpWork;
  seconds: number;
}

export function layerLinearSamples(samples: readonly ComputeSample[]): LayerLinearSample[] {
  const linear = samples.filter((s) => isLinearOp(s.op));
  const rows: LayerLinearSample[] = [];
  for (const group of groupBy(linear, (s) => `${s.gpu}/${s.model}/${s.numTokens}/${s.tp}`).values()) {
    // A row with an op missing or below the profiler's resolution says nothing about the sum.
    if (group.length !== LINEAR_OPS.length || !group.every(usable)) continue;
    const { shape, numTokens, tp, model } = group[0];
    const seconds = group.reduce((sum, s) => sum + s.medianMs / 1e3, 0);
    rows.push({ model, tp, work: layerLinearWork(shape, numTokens, tp), seconds });
  }
  return rows;
}

function fitLayerLinear(samples: readonly ComputeSample[]): LinearRates {
  const rows = layerLinearSamples(samples);
  return toLinearRates(
    minimizePositive(
      [100e12, 1e12, 10e-6],
      (params) =>
        logErrorLoss(
          rows.map((row) => [predictLayerLinearSeconds(toLinearRates(params), row.work), row.seconds]),
        ),
      { lowerBounds: [0, 0, MIN_LAUNCH_SECONDS], minLogStep: 1e-3 },
    ),
  );
}

/** Fits one GPU's op rates to its measured samples (all models, token counts and TP degrees), op by op. */
export function fitGpuOps(samples: readonly ComputeSample[]): GpuOpFit {
  const rows: OpRow[] = samples
    .filter(usable)
    .map((s) => ({ op: s.op, work: opWork(s.op, s.shape, s.numTokens, s.tp), seconds: s.medianMs / 1e3 }));
  const common = { sizeOf: (row: OpRow) => row.work.bytes, secondsOf: (row: OpRow) => row.seconds };
  // Linear ops keep one set of rates: split by bytes, their "large" side is the compute-bound
  // many-token rows, where a launch cost soaks up the rest and extrapolates badly.
  const linear = LINEAR_OPS.map((op): [LinearOp, SizeRegimes<LinearRates>] => {
    const fitted = fitSizeRegimes(
      rows.filter((row) => row.op === op),
      {
        ...common,
        candidateSplits: 1,
        start: [100e12, 1e12, 10e-6],
        lowerBounds: [0, 0, MIN_LAUNCH_SECONDS],
        predict: (params, row) => predictLinearSeconds(toLinearRates(params), row.work),
      },
    );
    return [op, mapRegimes(fitted, toLinearRates)];
  });
  const elementwise = ELEMENTWISE_OPS.map((op): [ElementwiseOp, SizeRegimes<LinkRate>] => {
    const fitted = fitSizeRegimes(
      rows.filter((row) => row.op === op),
      {
        ...common,
        start: [1e12, 5e-6],
        lowerBounds: [0, MIN_LAUNCH_SECONDS],
        predict: (params, row) => predictElementwiseSeconds(toLinkRate(params), row.work),
      },
    );
    return [op, mapRegimes(fitted, toLinkRate)];
  });
  return {
    layer: fitLayerLinear(samples),
    linear: Object.fromEntries(linear) as GpuOpFit['linear'],
    elementwise: Object.fromEntries(elementwise) as GpuOpFit['elementwise'],
  };
}

/** The share of the data that crosses each device's link: 2(n-1)/n for a ring all-reduce, 1 for a send. */
export function collectiveDataFactor(collective: NetworkSample['collective'], numWorkers: number): number {
  return collective === 'all_reduce' ? (2 * (numWorkers - 1)) / numWorkers : 1;
}

export function predictCollectiveSeconds(link: LinkProfile, sample: NetworkSample): number {
  const data = collectiveDataFactor(sample.collective, sample.numWorkers) * sample.sizeBytes;
  return link.latencySeconds + data / linkBytesPerSecond(link, sample.sizeBytes);
}

/**
 * Fits latency + data / bandwidth to one group of collective measurements (one cluster, kind,
 * worker layout), first with one bandwidth, then with a small- and a large-message bandwidth
 * (linkBytesPerSecond); the second is kept when it cuts the log error by more than 1%.
 */
export function fitCollectiveLink(samples: readonly NetworkSample[]): LinkProfile {
  const rows = samples.filter(usable);
  const lossOf = (link: LinkProfile) =>
    logErrorLoss(rows.map((s) => [predictCollectiveSeconds(link, s), s.medianMs / 1e3]));
  const [bytesPerSecond, latencySeconds] = minimizePositive(
    [10e9, 20e-6],
    ([bytes, latency]) => lossOf({ bytesPerSecond: bytes, latencySeconds: latency }),
    { lowerBounds: [0, MIN_LAUNCH_SECONDS] },
  );
  const single: LinkProfile = { bytesPerSecond, latencySeconds };
  const sizes = rows.map((s) => s.sizeBytes).sort((a, b) => a - b);
  const midSize = sizes[sizes.length >> 1] ?? 1;
  const twoBandwidths = ([small, latency, large, fromBytes, sharpness]: readonly number[]): LinkProfile => ({
    bytesPerSecond: small,
    latencySeconds: latency,
    largeMessages: { bytesPerSecond: large, fromBytes, sharpness },
  });
  const stepped = twoBandwidths(
    minimizePositive(
      [bytesPerSecond, latencySeconds, bytesPerSecond, midSize, 2],
      (params) => lossOf(twoBandwidths(params)),
      { lowerBounds: [0, MIN_LAUNCH_SECONDS, 0, 0, 0.5] },
    ),
  );
  return lossOf(stepped) < lossOf(single) * 0.99 ? stepped : single;
}

/** The key of one measured collective group: cluster/collective/workers/devices-per-node. */
export function networkGroupKey(sample: NetworkSample): string {
  return `${sample.cluster}/${sample.collective}/${sample.numWorkers}w/${sample.devicesPerNode}dpn`;
}

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
