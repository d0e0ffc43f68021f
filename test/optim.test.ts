// The optimizers' update rules, step by step, against values worked out by hand.

import { describe, expect, it } from 'vitest';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { stateVectors, updateSlice, type OptimizerConfig } from '../src/core/optim.js';

// Expected parameter values after each of four steps from p = 1 with gradients 0.5, -0.25, 1, 0.125,
// worked out by hand from torch.optim's update rules (SGD: d = g + wd·p; buf = d on the first step,
// then momentum·buf + (1 - dampening)·d; nesterov uses d + momentum·buf; p -= lr·d. Adam: m and v
// moving averages, bias corrections 1 - β^t, p -= lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps)).
// E.g. SGD momentum 0.9, wd 0.01, lr 0.1: d1 = 0.51, buf = 0.51, p1 = 0.949;
// d2 = -0.25 + 0.00949 = -0.24051, buf = 0.459 - 0.24051 = 0.21849, p2 = 0.927151.
const GRADS = [0.5, -0.25, 1.0, 0.125];

const cases: { name: string; opt: OptimizerConfig; expected: number[] }[] = [
  { name: 'plain SGD', opt: { name: 'sgd', lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 }, expected: [0.95, 0.975, 0.875, 0.8625] },
  { name: 'SGD, momentum and weight decay', opt: { name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0.01 }, expected: [0.949, 0.927151, 0.806559749, 0.684721063351] },
  { name: 'SGD, Nesterov', opt: { name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.01 }, expected: [0.9031, 0.90757411, 0.698189208191, 0.575483053766337] },
  { name: 'SGD, dampening', opt: { name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.5, nesterov: false, weightDecay: 0 }, expected: [0.95, 0.9175, 0.83825, 0.760675] },
  { name: 'Adam', opt: { name: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }, expected: [0.9900000002, 0.9873366298707846, 0.980755513967709, 0.9747657466500143] },
  { name: 'Adam, weight decay and other betas', opt: { name: 'adam', lr: 0.01, betas: [0.8, 0.99], eps: 1e-3, weightDecay: 0.1 }, expected: [0.9900166389351082, 0.985839067133735, 0.9782030659742579, 0.9712727141594342] },
];

describe('optimizers reproduce torch.optim', () => {
  for (const c of cases)
    it(c.name, () => {
      // Three parameters; only the middle one is in [lo, hi) and must move.
      const params = Float32Array.from([5, 1, 7]);
      // The step's gradient as the one slot's sum, scale 1: updateSlice's mean is the gradient itself.
      const slot = new Float32Array(3);
      const grad = new Float32Array(3);
      const state = Array.from({ length: stateVectors(c.opt) }, () => new Float32Array(3));
      GRADS.forEach((g, t) => {
        slot.fill(g);
        updateSlice(naiveKernels, c.opt, { params, state }, { params, state }, grad, [slot], 1, 1, 2, t + 1);
        expect(params[1]).toBeCloseTo(c.expected[t], 6);
      });
      expect(params[0]).toBe(5);
      expect(params[2]).toBe(7);
    });

  it('keeps state only where the optimizer needs it', () => {
    expect(stateVectors(cases[0].opt)).toBe(0);
    expect(stateVectors(cases[1].opt)).toBe(1);
    expect(stateVectors(cases[4].opt)).toBe(2);
  });
});
