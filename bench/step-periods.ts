// The step time the benchmarks report: the time from the end of one step to the end of the next,
// what a run gets per step, the coordinator's own time between steps (reporting, planning) included.
// (StepRecord.stepMs starts when the step began: for a step not posted ahead, when the trainer asked
// for it.)

import type { Reporter, StepRecord } from '../src/coordinator/train/trainer.js';

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
