// The step time the benchmarks report: the time from the end of one step to the end of the next,
// what a run gets per step. (The trainer's own StepRecord.stepMs starts when it asks for the step,
// which the threads may have begun already: fused steps are posted together with the next one.)

import type { Reporter, StepRecord } from '../src/coordinator/trainer.js';

/** A silent reporter that pushes each step's record into `steps`, its stepMs the time since the step before ended (NaN for the first). */
export function periodReporter(steps: StepRecord[]): Reporter {
  let last = NaN;
  return {
    start() {},
    epoch() {},
    log() {},
    step(r) {
      const now = performance.now();
      steps.push({ ...r, stepMs: now - last });
      last = now;
    },
  };
}
