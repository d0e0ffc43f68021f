// Loss gradients w.r.t. the network output, per sample (not divided by the batch size), each
// returning the loss sum in f64 as losses.ts does: softmax + cross-entropy on logits, and the squared
// error behind mse and half-sse. Targets are trusted: the model checks label ranges once.

import { expf32x4 } from './exp';

const SQRT2: f64 = 1.4142135623730951;
const LN2: f64 = 0.6931471805599453;

/**
 * ln x (for a finite x > 0, here a softmax denominator, in [1, cols]). The standard library's log
 * reads lookup tables, which would give the module a data segment; this one runs a series:
 * x = m·2ᵏ with m in [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| < 0.172, and 11 terms
 * of atanh(s)/s = Σ s²ʲ/(2j + 1) reach float64 precision. One call per row: speed is irrelevant.
 */
function logF64(x: f64): f64 {
  // A diverged row (a NaN or infinite sum) must not come out as a finite number.
  if (!(x > 0) || x == Infinity) return x == Infinity ? x : NaN;
  const bits = reinterpret<u64>(x);
  let k = <i32>(bits >> 52) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > SQRT2) {
    m *= 0.5;
    k++;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let t: f64 = 1.0 / 21;
  for (let j = 9; j >= 0; j--) t = t * s2 + 1.0 / <f64>(2 * j + 1);
  return <f64>k * LN2 + 2 * s * t;
}

/** The four lanes' largest (NaN if any is NaN, as the row's loss then is). */
// @ts-ignore: decorator
@inline function maxLanes(v: v128): f32 {
  return Mathf.max(
    Mathf.max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)),
    Mathf.max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)),
  );
}

/**
 * CrossEntropyLoss on logits h[rows×cols] with class indices y[rows] (stored as f32): per row
 * dh = softmax(h) − onehot(y), loss = ln Σ e^(h − max) − (h[y] − max). Returns the loss sum. The
 * softmax denominator is summed in f64 so that its rounding does not grow with cols.
 */
export function crossEntropyGrad(dh: usize, h: usize, y: usize, rows: i32, cols: i32): f64 {
  const rowBytes = <usize>cols << 2;
  const vecEnd = rowBytes & ~(<usize>15);
  let lossSum: f64 = 0;
  for (let r = 0; r < rows; r++) {
    let j: usize = 0;
    let mv = f32x4.splat(-Infinity);
    for (; j < vecEnd; j += 16) mv = f32x4.max(mv, v128.load(h + j));
    let rowMax = maxLanes(mv);
    for (; j < rowBytes; j += 4) rowMax = Mathf.max(rowMax, load<f32>(h + j));
    const target = <usize>(<i32>load<f32>(y)) << 2;
    // Read before dh is written: dh may be h.
    const logit = load<f32>(h + target);

    const maxv = f32x4.splat(rowMax);
    let sum = f64x2.splat(0);
    for (j = 0; j < vecEnd; j += 16) {
      const e = expf32x4(f32x4.sub(v128.load(h + j), maxv));
      v128.store(dh + j, e);
      const high = v128.shuffle<f32>(e, e, 2, 3, 2, 3);
      sum = f64x2.add(sum, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(high)));
    }
    let total = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
    for (; j < rowBytes; j += 4) {
      const e = f32x4.extract_lane(expf32x4(f32x4.splat(load<f32>(h + j) - rowMax)), 0);
      store<f32>(dh + j, e);
      total += <f64>e;
    }

    const inv = f32x4.splat(<f32>(1 / total));
    for (j = 0; j < vecEnd; j += 16) v128.store(dh + j, f32x4.mul(v128.load(dh + j), inv));
    const invScalar = f32x4.extract_lane(inv, 0);
    for (; j < rowBytes; j += 4) store<f32>(dh + j, load<f32>(dh + j) * invScalar);
    store<f32>(dh + target, load<f32>(dh + target) - 1);
    // As differences from the max: max + ln Σ − h[y] rounds ln Σ away when the logits are huge.
    lossSum += logF64(total) - (<f64>logit - <f64>rowMax);

    h += rowBytes;
    dh += rowBytes;
    y += 4;
  }
  return lossSum;
}

/**
 * dh = scale·(h − y) over len floats; returns Σ (h − y)² (mse's gradient has scale 2/cols and its
 * loss is the sum / cols, half-sse's scale 1 and sum / 2). The squares add in f64, as in TypeScript.
 */
export function squaredErrorGrad(dh: usize, h: usize, y: usize, len: i32, scale: f32): f64 {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const sv = f32x4.splat(scale);
  let sum = f64x2.splat(0);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const e = f32x4.sub(v128.load(h + i), v128.load(y + i));
    v128.store(dh + i, f32x4.mul(e, sv));
    const lo = f64x2.promote_low_f32x4(e);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 2, 3));
    sum = f64x2.add(sum, f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi)));
  }
  let total = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
  for (; i < bytes; i += 4) {
    const e = load<f32>(h + i) - load<f32>(y + i);
    store<f32>(dh + i, e * scale);
    total += <f64>e * <f64>e;
  }
  return total;
}
