// Element-wise passes of a dense layer in f32x4: bias, bias gradient, activations and their
// derivatives (sigmoid and tanh through the vector exp of exp.ts), and the ordered sum of gradient
// slots. Each loop does 4 lanes at a time and finishes the tail with scalars.

import { expf32x4 } from './exp';

/** z[r, j] += bias[j] for rows × cols. */
export function addBias(z: usize, bias: usize, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2;
  const vecEnd = rowBytes & ~(<usize>15);
  for (let r = 0; r < rows; r++) {
    let j: usize = 0;
    for (; j < vecEnd; j += 16) v128.store(z + j, f32x4.add(v128.load(z + j), v128.load(bias + j)));
    for (; j < rowBytes; j += 4) store<f32>(z + j, load<f32>(z + j) + load<f32>(bias + j));
    z += rowBytes;
  }
}

/**
 * dBias[j] += Σ_r dz[r, j], adding the rows in order into the running value (the same order, so
 * the same float32 result, as the TypeScript loop). Column blocks of 16 keep 4 sums in registers.
 */
export function colSum(dBias: usize, dz: usize, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2;
  let j: usize = 0;
  for (; j + 64 <= rowBytes; j += 64) {
    let s0 = v128.load(dBias + j), s1 = v128.load(dBias + j, 16);
    let s2 = v128.load(dBias + j, 32), s3 = v128.load(dBias + j, 48);
    let src = dz + j;
    for (let r = 0; r < rows; r++) {
      s0 = f32x4.add(s0, v128.load(src));
      s1 = f32x4.add(s1, v128.load(src, 16));
      s2 = f32x4.add(s2, v128.load(src, 32));
      s3 = f32x4.add(s3, v128.load(src, 48));
      src += rowBytes;
    }
    v128.store(dBias + j, s0);
    v128.store(dBias + j, s1, 16);
    v128.store(dBias + j, s2, 32);
    v128.store(dBias + j, s3, 48);
  }
  for (; j + 16 <= rowBytes; j += 16) {
    let s = v128.load(dBias + j);
    let src = dz + j;
    for (let r = 0; r < rows; r++) {
      s = f32x4.add(s, v128.load(src));
      src += rowBytes;
    }
    v128.store(dBias + j, s);
  }
  for (; j < rowBytes; j += 4) {
    let s = load<f32>(dBias + j);
    let src = dz + j;
    for (let r = 0; r < rows; r++) {
      s += load<f32>(src);
      src += rowBytes;
    }
    store<f32>(dBias + j, s);
  }
}

/** h = z > 0 ? z : 0 (NaN and -0 give 0, as in TypeScript). */
export function relu(h: usize, z: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const zero = f32x4.splat(0);
  let i: usize = 0;
  // pmax(0, z) = 0 < z ? z : 0.
  for (; i < vecEnd; i += 16) v128.store(h + i, f32x4.pmax(zero, v128.load(z + i)));
  for (; i < bytes; i += 4) {
    const x = load<f32>(z + i);
    store<f32>(h + i, x > 0 ? x : 0);
  }
}

/** d = h > 0 ? d : 0 (h = relu(z) is > 0 exactly where z is). */
export function reluBackward(d: usize, h: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const zero = f32x4.splat(0);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) v128.store(d + i, v128.and(v128.load(d + i), f32x4.gt(v128.load(h + i), zero)));
  for (; i < bytes; i += 4) if (!(load<f32>(h + i) > 0)) store<f32>(d + i, 0);
}

/** h = z > 0 ? z : slope·z. */
export function leakyRelu(h: usize, z: usize, len: i32, slope: f32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const zero = f32x4.splat(0);
  const s = f32x4.splat(slope);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const x = v128.load(z + i);
    v128.store(h + i, v128.bitselect(x, f32x4.mul(x, s), f32x4.gt(x, zero)));
  }
  for (; i < bytes; i += 4) {
    const x = load<f32>(z + i);
    store<f32>(h + i, x > 0 ? x : slope * x);
  }
}

/** d = h > 0 ? d : slope·d (h = leaky relu of z, > 0 exactly where z is). */
export function leakyReluBackward(d: usize, h: usize, len: i32, slope: f32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const zero = f32x4.splat(0);
  const s = f32x4.splat(slope);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const g = v128.load(d + i);
    v128.store(d + i, v128.bitselect(g, f32x4.mul(g, s), f32x4.gt(v128.load(h + i), zero)));
  }
  for (; i < bytes; i += 4) if (!(load<f32>(h + i) > 0)) store<f32>(d + i, slope * load<f32>(d + i));
}

/**
 * 1/(1 + e^−z) per lane, as e/(1 + e) for z < 0 with e = exp(−|z|) ∈ (0, 1]: exp never overflows
 * and a very negative z keeps exp's relative accuracy instead of dividing by a huge 1 + e^−z.
 */
// @ts-ignore: decorator
@inline function sigmoidf32x4(z: v128): v128 {
  const one = f32x4.splat(1);
  const e = expf32x4(f32x4.neg(f32x4.abs(z)));
  return f32x4.div(v128.bitselect(e, one, f32x4.lt(z, f32x4.splat(0))), f32x4.add(one, e));
}

/** h = 1/(1 + e^−z): 0 and 1 at z = ∓1000, NaN for NaN (h may be z). */
export function sigmoid(h: usize, z: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) v128.store(h + i, sigmoidf32x4(v128.load(z + i)));
  // The tail goes through the same lanes' math, so every element rounds alike.
  for (; i < bytes; i += 4) store<f32>(h + i, f32x4.extract_lane(sigmoidf32x4(f32x4.splat(load<f32>(z + i))), 0));
}

// Below |z| = 9/16 (tanh ≈ ½) 1 − 2/(e^2|z| + 1) would cancel ever more of its digits, so an odd
// polynomial |z| + |z|³·P(z²) takes over there: a degree-4 P fitted for relative error (≈ 0.02
// float32 ulp before rounding), keeping tanh(z) ≈ z accurate down to the tiniest z.
const TANH_SMALL: f32 = 0.5625;
const T0: f32 = -0.33333313;
const T1: f32 = 0.13332452;
const T2: f32 = -0.05383743;
const T3: f32 = 0.021007463;
const T4: f32 = -0.0061798161;

/** tanh per lane: computed on |z|, the sign of z put back (so tanh(−0) = −0, and odd symmetry is exact). */
// @ts-ignore: decorator
@inline function tanhf32x4(z: v128): v128 {
  const one = f32x4.splat(1);
  const a = f32x4.abs(z);
  // e^2a = Inf past a ≈ 44 makes the quotient 0, so large |z| gives exactly ±1; NaN falls here too.
  const large = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(expf32x4(f32x4.add(a, a)), one)));
  const w = f32x4.mul(a, a);
  let p = f32x4.add(f32x4.mul(f32x4.splat(T4), w), f32x4.splat(T3));
  p = f32x4.add(f32x4.mul(p, w), f32x4.splat(T2));
  p = f32x4.add(f32x4.mul(p, w), f32x4.splat(T1));
  p = f32x4.add(f32x4.mul(p, w), f32x4.splat(T0));
  const small = f32x4.add(a, f32x4.mul(f32x4.mul(a, w), p));
  const t = v128.bitselect(small, large, f32x4.lt(a, f32x4.splat(TANH_SMALL)));
  return v128.or(t, v128.and(z, i32x4.splat(i32.MIN_VALUE)));
}

/** h = tanh(z) (h may be z). */
export function tanh(h: usize, z: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) v128.store(h + i, tanhf32x4(v128.load(z + i)));
  for (; i < bytes; i += 4) store<f32>(h + i, f32x4.extract_lane(tanhf32x4(f32x4.splat(load<f32>(z + i))), 0));
}

/** d *= h·(1 − h), h = sigmoid(z). */
export function sigmoidBackward(d: usize, h: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const one = f32x4.splat(1);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const y = v128.load(h + i);
    v128.store(d + i, f32x4.mul(v128.load(d + i), f32x4.mul(y, f32x4.sub(one, y))));
  }
  for (; i < bytes; i += 4) {
    const y = load<f32>(h + i);
    store<f32>(d + i, load<f32>(d + i) * (y * (1 - y)));
  }
}

/**
 * d *= 1 − h², h = tanh(z), as (1 − h)·(1 + h): near saturation 1 − h·h would cancel the rounding
 * of h·h into a large relative error, while one factor of the product is exact there (Sterbenz).
 */
export function tanhBackward(d: usize, h: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  const one = f32x4.splat(1);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) {
    const y = v128.load(h + i);
    v128.store(d + i, f32x4.mul(v128.load(d + i), f32x4.mul(f32x4.sub(one, y), f32x4.add(one, y))));
  }
  for (; i < bytes; i += 4) {
    const y = load<f32>(h + i);
    store<f32>(d + i, load<f32>(d + i) * ((1 - y) * (1 + y)));
  }
}

/** dst[0, len) = src[0, len) (the identity activation into a separate buffer). */
export function copy(dst: usize, src: usize, len: i32): void {
  memory.copy(dst, src, <usize>len << 2);
}

/** Leaves of the left subtree of a pairwise node over n ≥ 2 leaves (core/pairwise.ts). */
// @ts-ignore: decorator
@inline
export function leftLeaves(n: i32): i32 {
  let m = 1;
  while (m * 2 < n) m *= 2;
  return m;
}

/** The 4 floats at byte `off` of slots table[0 .. n) summed by the step's fixed pairwise tree. */
export function pairwise4(table: usize, n: i32, off: usize): v128 {
  if (n == 1) return v128.load(<usize>load<u32>(table) + off);
  if (n == 2) return f32x4.add(v128.load(<usize>load<u32>(table) + off), v128.load(<usize>load<u32>(table, 4) + off));
  const m = leftLeaves(n);
  return f32x4.add(pairwise4(table, m, off), pairwise4(table + (<usize>m << 2), n - m, off));
}

/** The float at byte `off` of slots table[0 .. n) summed by the same tree. */
export function pairwise1(table: usize, n: i32, off: usize): f32 {
  if (n == 1) return load<f32>(<usize>load<u32>(table) + off);
  const m = leftLeaves(n);
  return pairwise1(table, m, off) + pairwise1(table + (<usize>m << 2), n - m, off);
}

/**
 * out[i] = scale · Σ_s slot_s[i] for i in [0, len), the slots added by the step's fixed pairwise
 * tree (up to three slots, the left fold 0, 1, 2), so the float32 result equals the TypeScript
 * loop's. `slots` holds `count` u32 byte offsets (already advanced to the range's start). Blocks of
 * 16 floats keep 4 sums in registers while the slots are walked, so every slot is read once and
 * out written once.
 */
export function sumSlots(out: usize, slots: usize, count: i32, len: i32, scale: f32): void {
  const bytes = <usize>len << 2;
  const tableEnd = slots + (<usize>count << 2);
  const first = <usize>load<u32>(slots);
  const scaled = scale != 1;
  const sv = f32x4.splat(scale);
  const fold = count <= 3;
  let i: usize = 0;
  for (; i + 64 <= bytes; i += 64) {
    let a0: v128, a1: v128, a2: v128, a3: v128;
    if (fold) {
      const s0 = first + i;
      a0 = v128.load(s0); a1 = v128.load(s0, 16); a2 = v128.load(s0, 32); a3 = v128.load(s0, 48);
      for (let t = slots + 4; t < tableEnd; t += 4) {
        const g = <usize>load<u32>(t) + i;
        a0 = f32x4.add(a0, v128.load(g));
        a1 = f32x4.add(a1, v128.load(g, 16));
        a2 = f32x4.add(a2, v128.load(g, 32));
        a3 = f32x4.add(a3, v128.load(g, 48));
      }
    } else {
      a0 = pairwise4(slots, count, i);
      a1 = pairwise4(slots, count, i + 16);
      a2 = pairwise4(slots, count, i + 32);
      a3 = pairwise4(slots, count, i + 48);
    }
    if (scaled) {
      a0 = f32x4.mul(a0, sv);
      a1 = f32x4.mul(a1, sv);
      a2 = f32x4.mul(a2, sv);
      a3 = f32x4.mul(a3, sv);
    }
    v128.store(out + i, a0);
    v128.store(out + i, a1, 16);
    v128.store(out + i, a2, 32);
    v128.store(out + i, a3, 48);
  }
  for (; i < bytes; i += 4) {
    const acc = pairwise1(slots, count, i);
    store<f32>(out + i, scaled ? acc * scale : acc);
  }
}
