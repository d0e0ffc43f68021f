// Losses as a table keyed by the config's names, with PyTorch's meaning. Each returns the SUM over
// the rows of the per-sample loss (mean reduction over outputs where PyTorch averages them too), so
// shard sums add up and are divided once by the minibatch size. `grad` writes the per-sample
// gradient w.r.t. the network output h (not divided by the batch size).

import type { LossName } from './spec.js';
import type { F32 } from './kernels/types.js';

export interface LossFns {
  /** Σ_rows loss(h_r, y_r); y holds class indices (cross-entropy) or rows × cols values. */
  value(h: F32, y: F32, rows: number, cols: number): number;
  /** dh = ∂loss/∂h per sample; returns the same sum as value. */
  grad(dh: F32, h: F32, y: F32, rows: number, cols: number): number;
}

// PyTorch's BCELoss clamps each log at -100 so that saturated outputs give a finite loss.
const LOG_CLAMP = -100;
const clampedLog = (x: number): number => Math.max(Math.log(x), LOG_CLAMP);

export const losses: Record<LossName, LossFns> = {
  // MSELoss: mean over the outputs of (h - y)².
  mse: {
    value(h, y, rows, cols) {
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) sum += (h[i] - y[i]) ** 2;
      return sum / cols;
    },
    grad(dh, h, y, rows, cols) {
      let sum = 0;
      const s = 2 / cols;
      for (let i = 0; i < rows * cols; i++) {
        const e = h[i] - y[i];
        sum += e * e;
        dh[i] = s * e;
      }
      return sum / cols;
    },
  },
  // L1Loss: mean over the outputs of |h - y|; sign(0) = 0 as in torch.
  mae: {
    value(h, y, rows, cols) {
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) sum += Math.abs(h[i] - y[i]);
      return sum / cols;
    },
    grad(dh, h, y, rows, cols) {
      let sum = 0;
      const s = 1 / cols;
      for (let i = 0; i < rows * cols; i++) {
        const e = h[i] - y[i];
        sum += Math.abs(e);
        dh[i] = e > 0 ? s : e < 0 ? -s : 0;
      }
      return sum / cols;
    },
  },
  // CrossEntropyLoss on logits with class-index targets: log-sum-exp shifted by the row max, and
  // the loss as ln Σ e^(h - max) - (h[y] - max): with logits far from zero, max + ln Σ - h[y] would
  // round the ln Σ term away (huge equal logits give 0 instead of ln cols). The gradient is
  // softmax(h) - onehot(y).
  'cross-entropy': {
    value(h, y, rows, cols) {
      let sum = 0;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let max = -Infinity;
        for (let j = 0; j < cols; j++) if (h[o + j] > max) max = h[o + j];
        let se = 0;
        for (let j = 0; j < cols; j++) se += Math.exp(h[o + j] - max);
        sum += Math.log(se) - (h[o + y[r]] - max);
      }
      return sum;
    },
    grad(dh, h, y, rows, cols) {
      let sum = 0;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let max = -Infinity;
        for (let j = 0; j < cols; j++) if (h[o + j] > max) max = h[o + j];
        let se = 0;
        for (let j = 0; j < cols; j++) {
          const e = Math.exp(h[o + j] - max);
          dh[o + j] = e;
          se += e;
        }
        const target = y[r];
        sum += Math.log(se) - (h[o + target] - max);
        const inv = 1 / se;
        for (let j = 0; j < cols; j++) dh[o + j] *= inv;
        dh[o + target] -= 1;
      }
      return sum;
    },
  },
  // BCELoss on probabilities: mean over the outputs of -(y log h + (1-y) log(1-h)), logs clamped.
  bce: {
    value(h, y, rows, cols) {
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) sum -= y[i] * clampedLog(h[i]) + (1 - y[i]) * clampedLog(1 - h[i]);
      return sum / cols;
    },
    grad(dh, h, y, rows, cols) {
      let sum = 0;
      // torch's BCELoss backward divides by max(h(1-h), 1e-12).
      for (let i = 0; i < rows * cols; i++) {
        const p = h[i];
        sum -= y[i] * clampedLog(p) + (1 - y[i]) * clampedLog(1 - p);
        dh[i] = (p - y[i]) / Math.max(p * (1 - p), 1e-12) / cols;
      }
      return sum / cols;
    },
  },
  // The lectures' ½‖y - h‖², summed over the outputs.
  'half-sse': {
    value(h, y, rows, cols) {
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) sum += 0.5 * (h[i] - y[i]) ** 2;
      return sum;
    },
    grad(dh, h, y, rows, cols) {
      let sum = 0;
      for (let i = 0; i < rows * cols; i++) {
        const e = h[i] - y[i];
        sum += 0.5 * e * e;
        dh[i] = e;
      }
      return sum;
    },
  },
};

/**
 * Sigmoid output + BCE fused: ∂loss/∂z = (h - y)/cols, stable where h saturates (the unfused
 * product divides by h(1-h) and multiplies it back).
 */
export function bceSigmoidGrad(dz: F32, h: F32, y: F32, rows: number, cols: number): number {
  let sum = 0;
  for (let i = 0; i < rows * cols; i++) {
    const p = h[i];
    sum -= y[i] * clampedLog(p) + (1 - y[i]) * clampedLog(1 - p);
    dz[i] = (p - y[i]) / cols;
  }
  return sum / cols;
}
