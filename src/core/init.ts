// Weight initialization from the seeded PRNG, layer by layer in parameter order, so the same seed
// gives the same weights on every machine. `pytorch` is nn.Linear's default (weights and biases
// uniform in ±1/√fan_in); `xavier` is Glorot uniform, `he` Kaiming normal (fan_in, ReLU gain),
// both with zero biases as is usual with them.

import type { ParamLayout } from './layout.js';
import { Rng } from './rng.js';
import type { InitName } from './spec.js';
import type { F32 } from './kernels/types.js';

export function initParams(params: F32, layout: ParamLayout, init: InitName, seed: number): void {
  const rng = new Rng(seed);
  for (const { nIn, nOut, weight, bias } of layout.dense) {
    const w = params.subarray(weight.offset, weight.offset + weight.length);
    const b = bias ? params.subarray(bias.offset, bias.offset + bias.length) : null;
    if (init === 'pytorch') {
      const bound = 1 / Math.sqrt(nIn);
      for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-bound, bound);
      if (b) for (let i = 0; i < b.length; i++) b[i] = rng.uniform(-bound, bound);
    } else if (init === 'xavier') {
      const bound = Math.sqrt(6 / (nIn + nOut));
      for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-bound, bound);
      b?.fill(0);
    } else {
      const std = Math.sqrt(2 / nIn);
      for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
      b?.fill(0);
    }
  }
}
