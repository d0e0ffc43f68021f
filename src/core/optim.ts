// Optimizers as torch.optim defines them, over a range [lo, hi) of the flat buffers so that several
// threads can update disjoint slices. State lives in flat vectors of the parameter layout; the
// step count (for SGD's first momentum step and Adam's bias correction) is passed in by the owner.

import type { ParamCopy } from './arena.js';
import type { AdamParams, F32, Kernels } from './kernels/types.js';

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

/** Slice `slice` of `slices` equal parameter ranges (multiples of 16 floats, for the SIMD loops). */
export function updateSliceRange(paramCount: number, slice: number, slices: number): { lo: number; hi: number } {
  const size = Math.ceil(paramCount / slices / 16) * 16;
  const lo = Math.min(paramCount, slice * size);
  return { lo, hi: Math.min(paramCount, lo + size) };
}

/**
 * A step's whole update of [lo, hi): the mean gradient (the slots' sums added in slot order, times
 * `scale` = 1 / batch rows), then the optimizer from `from` into `to`. grad[lo, hi) is scratch for
 * the mean gradient (SGD on the wasm kernels fuses the two and never stores it). With to ≠ from
 * it reads only `from` and the slots, so running it twice gives the same bits; disjoint slices can
 * run on different threads.
 */
export function updateSlice(
  k: Kernels, opt: OptimizerConfig, to: ParamCopy, from: ParamCopy, grad: F32, slots: readonly F32[], scale: number,
  lo: number, hi: number, step: number,
): void {
  if (opt.name === 'sgd') {
    // Without momentum there is no state: the gradient stands in for the untouched buffer.
    k.sumSgd(to.params, to.state[0] ?? grad, from.params, from.state[0] ?? grad, grad, slots, scale, lo, hi, {
      lr: opt.lr,
      momentum: opt.momentum,
      dampening: opt.dampening,
      nesterov: opt.nesterov,
      weightDecay: opt.weightDecay,
      firstStep: step === 1,
    });
  } else {
    k.sumSlots(grad, slots, lo, hi, scale);
    k.adam(to.params, to.state[0], to.state[1], from.params, from.state[0], from.state[1], grad, lo, hi, adamParams(opt, step));
  }
}

/** Adam's scalars for step t (1-based), bias corrections included: computed here once for every backend. */
export function adamParams(opt: Pick<AdamConfig, 'lr' | 'betas' | 'eps' | 'weightDecay'>, step: number): AdamParams {
  const [beta1, beta2] = opt.betas;
  return {
    beta1, beta2, eps: opt.eps, weightDecay: opt.weightDecay,
    stepSize: opt.lr / (1 - Math.pow(beta1, step)),
    bc2Sqrt: Math.sqrt(1 - Math.pow(beta2, step)),
  };
}
