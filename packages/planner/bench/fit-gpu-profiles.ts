/**
 * Regenerates packages/planner/calibration/fitted-profiles.json from the measured tables:
 *   pnpm fit:gpu-profiles [CALIBRATION_DIR]   (default: the in-repo copy, calibration/vidur)
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FITTED_PROFILES_URL, fitProfiles } from '../src/calibration/fitted-profiles.ts';

const dir = process.argv[2] ?? fileURLToPath(new URL('../calibration/vidur', import.meta.url));
const profiles = fitProfiles(
  dir,
  'Vidur profiling tables (microsoft/vidur, MIT), medians; see calibration/README.md',
);
writeFileSync(FITTED_PROFILES_URL, `${JSON.stringify(profiles, null, 2)}\n`);
console.log(
  `fitted ${Object.keys(profiles.gpus).join(', ')} and ${Object.keys(profiles.links).length} collective groups from ${dir}`,
);
console.log(`wrote ${fileURLToPath(FITTED_PROFILES_URL)}`);
