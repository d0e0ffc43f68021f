// Optimizers as torch.optim defines them, over a range [lo, hi) of the flat buffers so that several
// threads can update disjoint slices. State lives in flat vectors of the parameter layout; the
// step count (for SGD's first momentum step and Adam's bias correction) is passed in by the owner.

import type { F32, Kernels } from './kernels/types.js';

export interface SgdConfig {
  readonly name: 'sgd';
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
}

export interface AdamConfig {
  readonly name: 'adam';
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
}

export type OptimizerConfig = SgdConfig | AdamConfig;

export function stateVectors(opt: OptimizerConfig): number {
  if (opt.name === 'adam') return 2;
  return opt.momentum !== 0 ? 1 : 0;
}

/**
 * One optimizer step on params[lo, hi) from the mean gradient. `step` counts from 1.
 * `lr` may override the config's (for schedules).
 */
export function optimizerStep(
  k: Kernels, opt: OptimizerConfig, params: F32, grad: F32, state: readonly F32[], lo: number, hi: number, step: number,
): void {
  if (opt.name === 'sgd') {
    k.sgd(params, grad, state[0] ?? grad, lo, hi, {
      lr: opt.lr,
      momentum: opt.momentum,
      dampening: opt.dampening,
      nesterov: opt.nesterov,
      weightDecay: opt.weightDecay,
      firstStep: step === 1,
    });
  } else {
    k.adam(params, grad, state[0], state[1], lo, hi, {
      lr: opt.lr,
      beta1: opt.betas[0],
      beta2: opt.betas[1],
      eps: opt.eps,
      weightDecay: opt.weightDecay,
      step,
    });
  }
}
