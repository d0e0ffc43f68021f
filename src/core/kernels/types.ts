// The small interface every kernel backend implements: the three matrix products of a dense layer's
// forward and backward pass, and the element-wise passes around them. All arrays are views into the
// arena (or any Float32Array for the TypeScript backends); shapes are row-major. A backend instance
// belongs to one thread: it may use its scratch buffer freely.

import type { Activation, LossName } from '../spec.js';

export type F32 = Float32Array;

export interface SgdParams {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  /** True on the first step, where torch.optim.SGD sets the momentum buffer to the gradient. */
  readonly firstStep: boolean;
}

/** torch.optim.Adam's step t with its bias corrections folded in once, above the backends (optim.ts adamParams). */
/**
 * Whether the one-pass reduce + SGD of the SIMD backends applies: plain momentum after the first
 * step, the default optimizer's case; every other SGD runs as sumSlots, then sgd.
 */
export function plainMomentum(p: SgdParams): boolean {
  return p.momentum !== 0 && !p.nesterov && p.weightDecay === 0 && !p.firstStep;
}

export interface AdamParams {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** lr / (1 − β1^t). */
  readonly stepSize: number;
  /** √(1 − β2^t). */
  readonly bc2Sqrt: number;
}

export interface Kernels {
  readonly name: string;
  /** c[m×n] (+)= a[m×k] · bᵀ, with b stored [n×k]. Forward: Z = H·Wᵀ. */
  gemmNT(c: F32, a: F32, b: F32, m: number, n: number, k: number, accumulate: boolean): void;
  /** c[m×n] (+)= aᵀ · b, with a stored [k×m] and b [k×n]. Backward: dW += dZᵀ·H. */
  gemmTN(c: F32, a: F32, b: F32, m: number, n: number, k: number, accumulate: boolean): void;
  /** c[m×n] (+)= a[m×k] · b[k×n]. Backward: dH = dZ·W. */
  gemmNN(c: F32, a: F32, b: F32, m: number, n: number, k: number, accumulate: boolean): void;
  /** z[r, j] += bias[j] for rows × cols. */
  addBias(z: F32, bias: F32, rows: number, cols: number): void;
  /** dBias[j] += Σ_r dz[r, j]. */
  colSum(dBias: F32, dz: F32, rows: number, cols: number): void;
  /** h = f(z), element-wise over len (h may be z). */
  activate(kind: Activation, h: F32, z: F32, len: number): void;
  /** d *= f'(z), computed from h = f(z) alone (relu: h > 0 exactly where z > 0). */
  activateBackward(kind: Activation, d: F32, h: F32, len: number): void;
  /**
   * A dense layer's forward: h[rows×nOut] = act(inp[rows×nIn] · wᵀ + b). z [rows×nOut] is scratch
   * for the pre-activation, which a backend may skip (backward reads h only).
   */
  linear(h: F32, z: F32, inp: F32, w: F32, b: F32 | null, act: Activation, rows: number, nIn: number, nOut: number): void;
  /** dh = ∂loss/∂h per sample for h[rows×cols]; returns the loss sum over the rows (as LossFns.grad). */
  lossGrad(loss: LossName, dh: F32, h: F32, y: F32, rows: number, cols: number): number;
  /** out[i] = scale · Σ_s slots[s][i] for i in [lo, hi), slots summed in index order. */
  sumSlots(out: F32, slots: readonly F32[], lo: number, hi: number, scale: number): void;
  /**
   * torch.optim.SGD on [lo, hi): reads params and momentumBuf, writes paramsOut and momentumBufOut
   * (the same arrays update in place; other arrays leave the inputs untouched, so a re-run is exact).
   */
  sgd(paramsOut: F32, momentumBufOut: F32, params: F32, momentumBuf: F32, grad: F32, lo: number, hi: number, p: SgdParams): void;
  /**
   * A step's reduce and SGD in one call: grad[lo, hi) = scale · Σ slots (as sumSlots), then sgd
   * with it; the same bits as the two calls. A backend may fuse them into one pass and leave grad
   * unwritten (wasm does for plain momentum: the mean gradient is then never stored).
   */
  sumSgd(paramsOut: F32, momentumBufOut: F32, params: F32, momentumBuf: F32, grad: F32, slots: readonly F32[], scale: number, lo: number, hi: number, p: SgdParams): void;
  /** torch.optim.Adam on [lo, hi), out of place as sgd. */
  adam(paramsOut: F32, mOut: F32, vOut: F32, params: F32, m: F32, v: F32, grad: F32, lo: number, hi: number, p: AdamParams): void;
}
