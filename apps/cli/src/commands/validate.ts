/**
 * `seesaw validate --calibration DIR`: holds the planner's fitted GPU profiles against measured
 * per-op and collective timings (Vidur's table layout) and prints, per GPU and op, the median and
 * worst error against the rows and the median against the rows' local medians (their noise taken
 * out). Exits 1 when that denoised median exceeds 10% or a measured GPU/cluster has no fit.
 */
import { existsSync } from 'node:fs';
import { calibrationReport, formatCalibrationReport, shippedFittedProfiles } from '@seesaw/planner';
import { optionalString, parseFlags, UsageError } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';

export const VALIDATE_FLAGS = commandFlagSpec('validate');

export async function validateCommand(argv: string[]): Promise<number> {
  const values = parseFlags('validate', argv, VALIDATE_FLAGS);
  const given = optionalString(values, 'calibration');
  if (given === undefined)
    throw new UsageError('validate needs --calibration DIR (a directory of measured tables)');
  // The shared layout keeps the tables under vidur/; accept either that directory or its parent.
  const dir = existsSync(`${given}/compute`) ? given : `${given}/vidur`;
  if (!existsSync(`${dir}/compute`))
    throw new UsageError(`--calibration ${given}: no compute/ tables there (nor under vidur/)`);
  const report = calibrationReport(shippedFittedProfiles(), dir);
  process.stdout.write(`validate: fitted GPU profiles against ${dir}\n\n${formatCalibrationReport(report)}`);
  return report.failing.length === 0 && report.unfitted.length === 0 ? 0 : 1;
}
