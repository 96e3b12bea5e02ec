import { SeesawScheduler, type SeesawSchedulerConfig, type StepScheduler } from '@seesaw/coordinator';

/** The engine's own Seesaw policy, as the simulator drives it (all thresholds from `config`). */
export function createSeesawScheduler(config: SeesawSchedulerConfig): StepScheduler {
  return new SeesawScheduler(config);
}
