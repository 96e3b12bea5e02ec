/** Failures of device actors, each naming the device, as the coordinator sees them. */

/** A device actor is gone: its worker exited or failed, its link closed, or it missed heartbeats. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    readonly deviceName: string,
    readonly reason: string,
  ) {
    super(`${deviceName} lost: ${reason}`);
  }
}

/** A device answered a request with an `error` message (load or step failure). */
export class DeviceStepError extends Error {
  override name = 'DeviceStepError';
  constructor(
    readonly deviceName: string,
    /** The device's machine-readable code, e.g. 'stepFailed', 'outOfMemory', 'loadFailed'. */
    readonly code: string,
    detail: string,
    readonly stepId?: number,
  ) {
    super(`${deviceName}: ${code}${stepId === undefined ? '' : ` in step ${stepId}`}: ${detail}`);
  }
}
