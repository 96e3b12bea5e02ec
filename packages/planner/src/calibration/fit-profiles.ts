import type { LinkProfile } from '../hardware.ts';
import {
  type ComputeSample,
  ELEMENTWISE_OPS,
  type ElementwiseOp,
  type NetworkSample,
} from './calibration-tables.ts';
import { minimizePositive } from './fit-minimize.ts';
import { type GpuOpFit, isLinearOp, type LinkRate, opWork, predictOpSeconds } from './gpu-op-model.ts';

/** Mean |log(predicted / measured)|: a 2 us kernel weighs like a 20 ms one. */
function logErrorLoss(pairs: Iterable<[number, number]>): number {
  let sum = 0;
  let count = 0;
  for (const [predicted, measured] of pairs) {
    sum += Math.abs(Math.log(predicted / measured));
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

const usable = (sample: { medianMs: number }) => sample.medianMs > 0;

/** Fits one GPU's op rates to its measured samples (all models, token counts and TP degrees). */
export function fitGpuOps(samples: readonly ComputeSample[]): GpuOpFit {
  const withWork = samples
    .filter(usable)
    .map((s) => ({ sample: s, work: opWork(s.op, s.shape, s.numTokens, s.tp), seconds: s.medianMs / 1e3 }));
  const linear = withWork.filter((w) => isLinearOp(w.sample.op));
  const elementwise = withWork.filter((w) => !isLinearOp(w.sample.op));
  const [matmulFlopsPerSecond, linearBytesPerSecond, linearLaunchSeconds] = minimizePositive(
    [100e12, 1e12, 10e-6],
    ([flops, bytes, launch]) =>
      logErrorLoss(
        linear.map((w) => [launch + Math.max(w.work.flops / flops, w.work.bytes / bytes), w.seconds]),
      ),
  );
  const elementwiseRates = ELEMENTWISE_OPS.map((op): [ElementwiseOp, LinkRate] => {
    const rows = elementwise.filter((w) => w.sample.op === op);
    const [bytesPerSecond, launchSeconds] = minimizePositive([1e12, 5e-6], ([bytes, launch]) =>
      logErrorLoss(rows.map((w) => [launch + w.work.bytes / bytes, w.seconds])),
    );
    return [op, { bytesPerSecond, launchSeconds }];
  });
  const fit: GpuOpFit = {
    matmulFlopsPerSecond,
    linearBytesPerSecond,
    linearLaunchSeconds,
    elementwise: Object.fromEntries(elementwiseRates) as Record<ElementwiseOp, LinkRate>,
  };
  // A sanity check that the fit is the model predictOpSeconds evaluates.
  if (withWork.length > 0 && !Number.isFinite(predictOpSeconds(fit, withWork[0].sample.op, withWork[0].work)))
    throw new Error('GPU op fit produced a non-finite prediction');
  return fit;
}

/** The share of the data that crosses each device's link: 2(n-1)/n for a ring all-reduce, 1 for a send. */
export function collectiveDataFactor(collective: NetworkSample['collective'], numWorkers: number): number {
  return collective === 'all_reduce' ? (2 * (numWorkers - 1)) / numWorkers : 1;
}

export function predictCollectiveSeconds(link: LinkProfile, sample: NetworkSample): number {
  return (
    link.latencySeconds +
    (collectiveDataFactor(sample.collective, sample.numWorkers) * sample.sizeBytes) / link.bytesPerSecond
  );
}

/** Fits latency + data / bandwidth to one group of collective measurements (one cluster, kind, worker layout). */
export function fitCollectiveLink(samples: readonly NetworkSample[]): LinkProfile {
  const rows = samples.filter(usable);
  const [bytesPerSecond, latencySeconds] = minimizePositive([10e9, 20e-6], ([bytes, latency]) =>
    logErrorLoss(
      rows.map((s) => [
        predictCollectiveSeconds({ bytesPerSecond: bytes, latencySeconds: latency }, s),
        s.medianMs / 1e3,
      ]),
    ),
  );
  return { bytesPerSecond, latencySeconds };
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
