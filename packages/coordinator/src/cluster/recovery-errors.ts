/** How a run over device actors ends when lost devices cannot be worked around. */
import type { EngineRequest } from '../request.ts';
import { DeviceLostError } from './device-errors.ts';

/**
 * Every replica of a ClusterEngine lost a device. Carries what the engine still owed, so a new
 * cluster can run it: the requests exactly as added (seeds resolved), oldest first. It is a
 * DeviceLostError for the last device lost (deviceName, reason), so a caller that does not
 * re-plan sees the loss that stopped it.
 */
export class ReplicasLostError extends DeviceLostError {
  override name = 'ReplicasLostError';
  constructor(
    /** DeviceLostError.deviceName of each lost replica's first failed device, in loss order. */
    readonly lostDevices: readonly string[],
    readonly unfinishedRequests: readonly EngineRequest[],
    readonly lastLoss: DeviceLostError,
  ) {
    super(lastLoss.deviceName, lastLoss.reason);
    this.message =
      `every replica lost a device (${lostDevices.join('; ')}), last ${lastLoss.message}; ` +
      `${unfinishedRequests.length} unfinished request${unfinishedRequests.length === 1 ? '' : 's'}`;
    this.cause = lastLoss;
  }
}

function listIds(ids: readonly string[], max = 10): string {
  const shown = ids.slice(0, max).join(', ');
  return ids.length > max ? `${shown}, ... (${ids.length - max} more)` : shown;
}

/** The run cannot go on: no valid configuration is left, or the re-planned cluster failed. */
export class ClusterStoppedError extends Error {
  override name = 'ClusterStoppedError';
  constructor(
    /** Every device lost during the run, e.g. 'device 1 (dp 0, pp 0, tp 1) of T2'. */
    readonly lostDevices: readonly string[],
    /** Ids of the requests that did not finish. */
    readonly unfinishedRequestIds: readonly string[],
    /** Why it stopped, e.g. 'no valid configuration on the 0 healthy devices left'. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `run stopped: ${reason}; lost ${lostDevices.join('; ')}; ` +
        `${unfinishedRequestIds.length} request${unfinishedRequestIds.length === 1 ? '' : 's'} ` +
        `did not finish (${listIds(unfinishedRequestIds)})`,
      options,
    );
  }

  /** The same error, its message naming where the requests completed before it are. */
  withPartialOutput(outputPath: string, numCompleted: number): ClusterStoppedError {
    const error = new ClusterStoppedError(this.lostDevices, this.unfinishedRequestIds, this.reason, {
      cause: this.cause,
    });
    error.message += `; the ${numCompleted} completed result${numCompleted === 1 ? ' is' : 's are'} in ${outputPath}`;
    return error;
  }
}
