// Activations as a table keyed by the config's names: each forward loop sits beside its derivative.
// backward multiplies an incoming gradient in place by f'(z) computed from h = f(z) alone, so a
// fused forward never has to keep z (relu and leaky relu: h > 0 exactly where z > 0).

import type { Activation } from './spec.js';
import type { F32 } from './kernels/types.js';

export interface ActivationFns {
  /** h = f(z) */
  forward(h: F32, z: F32, len: number): void;
  /** d *= f'(z), from h = f(z) */
  backward(d: F32, h: F32, len: number): void;
}

export const LEAKY_SLOPE = 0.01;

export const activations: Record<Activation, ActivationFns> = {
  identity: {
    forward(h, z, len) {
      if (h !== z) h.set(z.subarray(0, len));
    },
    backward() {},
  },
  relu: {
    forward(h, z, len) {
      for (let i = 0; i < len; i++) h[i] = z[i] > 0 ? z[i] : 0;
    },
    backward(d, h, len) {
      for (let i = 0; i < len; i++) if (!(h[i] > 0)) d[i] = 0;
    },
  },
  'leaky-relu': {
    forward(h, z, len) {
      for (let i = 0; i < len; i++) h[i] = z[i] > 0 ? z[i] : LEAKY_SLOPE * z[i];
    },
    backward(d, h, len) {
      for (let i = 0; i < len; i++) if (!(h[i] > 0)) d[i] *= LEAKY_SLOPE;
    },
  },
  sigmoid: {
    forward(h, z, len) {
      for (let i = 0; i < len; i++) h[i] = 1 / (1 + Math.exp(-z[i]));
    },
    backward(d, h, len) {
      for (let i = 0; i < len; i++) d[i] *= h[i] * (1 - h[i]);
    },
  },
  tanh: {
    forward(h, z, len) {
      for (let i = 0; i < len; i++) h[i] = Math.tanh(z[i]);
    },
    backward(d, h, len) {
      for (let i = 0; i < len; i++) d[i] *= 1 - h[i] * h[i];
    },
  },
};

/** Row-wise softmax of logits (numerically stable), for prediction. */
export function softmaxRows(p: F32, logits: F32, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(logits[o + j] - max);
      p[o + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) p[o + j] *= inv;
  }
}
