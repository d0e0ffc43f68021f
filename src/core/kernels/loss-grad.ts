// The loss gradients of the SIMD backends: cross-entropy and the squared errors run in the backend's
// own kernels (each given the arrays as its handles), mae and bce in TypeScript, with the scalings
// that give PyTorch's reductions in one place.

import { losses } from '../losses.js';
import type { LossName } from '../spec.js';
import type { F32 } from './types.js';

export interface LossKernels {
  /** dh = softmax(h) − onehot(y) per row; returns the loss sum. */
  crossEntropy(dh: F32, h: F32, y: F32, rows: number, cols: number): number;
  /** dh = scale · (h − y) over len; returns Σ (h − y)². */
  squaredError(dh: F32, h: F32, y: F32, len: number, scale: number): number;
}

export function lossGradVia(k: LossKernels, loss: LossName, dh: F32, h: F32, y: F32, rows: number, cols: number): number {
  const len = rows * cols;
  switch (loss) {
    case 'cross-entropy':
      return k.crossEntropy(dh, h, y, rows, cols);
    case 'mse':
      return k.squaredError(dh, h, y, len, 2 / cols) / cols;
    case 'half-sse':
      return 0.5 * k.squaredError(dh, h, y, len, 1);
    default:
      // mae, bce: not vectorized (bce mostly runs fused with a sigmoid output, in model.ts).
      return losses[loss].grad(dh, h, y, rows, cols);
  }
}
