// The element-wise passes in plain TypeScript, shared by the naive and the fast TypeScript backends.

import { activations } from '../activations.js';
import { losses } from '../losses.js';
import type { Kernels } from './types.js';

// Methods may call the backend's own GEMMs through `this` (the kernel object they are spread into).
type Elementwise = Omit<Kernels, 'name' | 'gemmNT' | 'gemmTN' | 'gemmNN'> & ThisType<Kernels>;

export const tsElementwise: Elementwise = {
  addBias(z, bias, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) z[o + j] += bias[j];
    }
  },

  colSum(dBias, dz, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) dBias[j] += dz[o + j];
    }
  },

  activate(kind, h, z, len) {
    activations[kind].forward(h, z, len);
  },

  activateBackward(kind, d, h, len) {
    activations[kind].backward(d, h, len);
  },

  linear(h, z, inp, w, b, act, rows, nIn, nOut) {
    this.gemmNT(z, inp, w, rows, nOut, nIn, false);
    if (b) this.addBias(z, b, rows, nOut);
    this.activate(act, h, z, rows * nOut);
  },

  lossGrad(loss, dh, h, y, rows, cols) {
    return losses[loss].grad(dh, h, y, rows, cols);
  },

  sumSlots(out, slots, lo, hi, scale) {
    const first = slots[0];
    for (let i = lo; i < hi; i++) out[i] = first[i];
    for (let s = 1; s < slots.length; s++) {
      const g = slots[s];
      for (let i = lo; i < hi; i++) out[i] += g[i];
    }
    if (scale !== 1) for (let i = lo; i < hi; i++) out[i] *= scale;
  },

  sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p) {
    const { lr, momentum, dampening, nesterov, weightDecay, firstStep } = p;
    for (let i = lo; i < hi; i++) {
      let g = grad[i];
      const w = params[i];
      if (weightDecay !== 0) g += weightDecay * w;
      if (momentum !== 0) {
        bufOut[i] = firstStep ? g : momentum * buf[i] + (1 - dampening) * g;
        // Read back: torch keeps the buffer as a float32 tensor.
        const b = bufOut[i];
        g = nesterov ? g + momentum * b : b;
      }
      paramsOut[i] = w - lr * g;
    }
  },

  sumSgd(paramsOut, bufOut, params, buf, grad, slots, scale, lo, hi, p) {
    this.sumSlots(grad, slots, lo, hi, scale);
    this.sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p);
  },

  adam(paramsOut, mOut, vOut, params, m, v, grad, lo, hi, p) {
    const { beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt } = p;
    for (let i = lo; i < hi; i++) {
      let g = grad[i];
      const w = params[i];
      if (weightDecay !== 0) g += weightDecay * w;
      mOut[i] = beta1 * m[i] + (1 - beta1) * g;
      vOut[i] = beta2 * v[i] + (1 - beta2) * g * g;
      paramsOut[i] = w - (stepSize * mOut[i]) / (Math.sqrt(vOut[i]) / bc2Sqrt + eps);
    }
  },
};
