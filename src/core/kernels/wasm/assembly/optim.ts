// torch.optim.SGD and Adam over a slice of the flat parameter buffers, in f32x4. The coefficients
// arrive precomputed (float64 on the TypeScript side, rounded once to float32 here). Each reads
// the parameters and state at one set of offsets and writes them at another (the same offsets
// update in place): every element is read before it is written.

import { pairwise1, pairwise4 } from './elementwise';

/**
 * SGD on len floats: g = grad + wd·param; with momentum, buf = first ? g : momentum·buf +
 * (1 − dampening)·g and g = nesterov ? g + momentum·buf : buf; then param -= lr·g.
 */
export function sgd(
  paramsOut: usize, bufOut: usize, params: usize, buf: usize, grad: usize, len: i32,
  lr: f32, momentum: f32, oneMinusDampening: f32, nesterov: bool, weightDecay: f32, firstStep: bool,
): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const decay = weightDecay != 0;
  const hasMomentum = momentum != 0;
  const vLr = f32x4.splat(lr), vMom = f32x4.splat(momentum), vDamp = f32x4.splat(oneMinusDampening);
  const vWd = f32x4.splat(weightDecay);
  let i: usize = 0;
  if (hasMomentum && !decay && !nesterov && !firstStep) {
    // The common case (plain momentum) without the per-iteration branches, which V8 does not
    // hoist: measured 0.61 → 0.38 ms per 669,706 floats in cache, 0.65 → 0.54 ms from memory.
    for (; i < vecEnd; i += 16) {
      const b = f32x4.add(f32x4.mul(vMom, v128.load(buf + i)), f32x4.mul(vDamp, v128.load(grad + i)));
      v128.store(bufOut + i, b);
      v128.store(paramsOut + i, f32x4.sub(v128.load(params + i), f32x4.mul(vLr, b)));
    }
  }
  for (; i < vecEnd; i += 16) {
    const p = v128.load(params + i);
    let g = v128.load(grad + i);
    if (decay) g = f32x4.add(g, f32x4.mul(vWd, p));
    if (hasMomentum) {
      const b = firstStep ? g : f32x4.add(f32x4.mul(vMom, v128.load(buf + i)), f32x4.mul(vDamp, g));
      v128.store(bufOut + i, b);
      g = nesterov ? f32x4.add(g, f32x4.mul(vMom, b)) : b;
    }
    v128.store(paramsOut + i, f32x4.sub(p, f32x4.mul(vLr, g)));
  }
  for (; i < bytes; i += 4) {
    const p = load<f32>(params + i);
    let g = load<f32>(grad + i);
    if (decay) g += weightDecay * p;
    if (hasMomentum) {
      const b = firstStep ? g : momentum * load<f32>(buf + i) + oneMinusDampening * g;
      store<f32>(bufOut + i, b);
      g = nesterov ? g + momentum * b : b;
    }
    store<f32>(paramsOut + i, p - lr * g);
  }
}

/**
 * Adam on len floats: m = β1·m + (1 − β1)·g, v = β2·v + (1 − β2)·g², then
 * param -= stepSize·m / (√v / bc2Sqrt + eps), with stepSize = lr / (1 − β1^t), bc2Sqrt = √(1 − β2^t).
 */
export function adam(
  paramsOut: usize, mOut: usize, vOut: usize, params: usize, m: usize, v: usize, grad: usize, len: i32,
  beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32, weightDecay: f32,
): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const decay = weightDecay != 0;
  const vB1 = f32x4.splat(beta1), vC1 = f32x4.splat(oneMinusBeta1);
  const vB2 = f32x4.splat(beta2), vC2 = f32x4.splat(oneMinusBeta2);
  const vStep = f32x4.splat(stepSize), vBc2 = f32x4.splat(bc2Sqrt), vEps = f32x4.splat(eps);
  const vWd = f32x4.splat(weightDecay);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const p = v128.load(params + i);
    let g = v128.load(grad + i);
    if (decay) g = f32x4.add(g, f32x4.mul(vWd, p));
    const mi = f32x4.add(f32x4.mul(vB1, v128.load(m + i)), f32x4.mul(vC1, g));
    const vi = f32x4.add(f32x4.mul(vB2, v128.load(v + i)), f32x4.mul(f32x4.mul(vC2, g), g));
    v128.store(mOut + i, mi);
    v128.store(vOut + i, vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vBc2), vEps);
    v128.store(paramsOut + i, f32x4.sub(p, f32x4.div(f32x4.mul(vStep, mi), denom)));
  }
  for (; i < bytes; i += 4) {
    const p = load<f32>(params + i);
    let g = load<f32>(grad + i);
    if (decay) g += weightDecay * p;
    const mi = beta1 * load<f32>(m + i) + oneMinusBeta1 * g;
    const vi = beta2 * load<f32>(v + i) + oneMinusBeta2 * g * g;
    store<f32>(mOut + i, mi);
    store<f32>(vOut + i, vi);
    store<f32>(paramsOut + i, p - (stepSize * mi) / (Mathf.sqrt(vi) / bc2Sqrt + eps));
  }
}

/**
 * The step's whole SGD-momentum update of len floats fused with the reduction: g = the slots' sum
 * (by the step's pairwise tree) × scale, buf = momentum·buf + (1 − dampening)·g, params −= lr·buf, from
 * (params, buf) into (paramsOut, bufOut) (the same pointers: in place). The mean gradient is never stored.
 */
export function sumSgdMomentum(
  paramsOut: usize, bufOut: usize, params: usize, buf: usize, slots: usize, count: i32, len: i32,
  scale: f32, lr: f32, momentum: f32, oneMinusDampening: f32,
): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const fold = count <= 3;
  const tableEnd = slots + (<usize>count << 2);
  const first = <usize>load<u32>(slots);
  const vScale = f32x4.splat(scale), vLr = f32x4.splat(lr), vMom = f32x4.splat(momentum), vDamp = f32x4.splat(oneMinusDampening);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    // Up to three slots the tree is the left fold: inline, without a call per vector.
    let g: v128;
    if (fold) {
      g = v128.load(first + i);
      for (let t = slots + 4; t < tableEnd; t += 4) g = f32x4.add(g, v128.load(<usize>load<u32>(t) + i));
    } else g = pairwise4(slots, count, i);
    g = f32x4.mul(g, vScale);
    const b = f32x4.add(f32x4.mul(vMom, v128.load(buf + i)), f32x4.mul(vDamp, g));
    v128.store(bufOut + i, b);
    v128.store(paramsOut + i, f32x4.sub(v128.load(params + i), f32x4.mul(vLr, b)));
  }
  for (; i < bytes; i += 4) {
    let g: f32;
    if (fold) {
      g = load<f32>(first + i);
      for (let t = slots + 4; t < tableEnd; t += 4) g += load<f32>(<usize>load<u32>(t) + i);
    } else g = pairwise1(slots, count, i);
    g *= scale;
    const b = momentum * load<f32>(buf + i) + oneMinusDampening * g;
    store<f32>(bufOut + i, b);
    store<f32>(paramsOut + i, load<f32>(params + i) - lr * b);
  }
}
