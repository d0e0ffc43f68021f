// exp in f32x4, the one transcendental the sigmoid, tanh and softmax kernels share. It uses no
// tables: every constant is an inline splat, so the module keeps no data segment.

// ln 2 split Cody–Waite style: LN2_HI has 16 significant bits, so n·LN2_HI is exact for the
// |n| ≤ 150 reached here and x − n·LN2_HI loses nothing; LN2_LO carries the rest of ln 2.
const LN2_HI: f32 = reinterpret<f32>(0x3f317200); // 0.693145751953125
const LN2_LO: f32 = reinterpret<f32>(0x35bfbe8e); // 1.4286068e-6
const LOG2E: f32 = 1.44269504;

// exp(r) ≈ 1 + r + r²·(C2 + C3·r + C4·r² + C5·r³ + C6·r⁴) on |r| ≤ ln2/2: a degree-6 fit minimising
// the relative error of exp (Lawson's weighted minimax, ≈ 0.05 float32 ulp before rounding), so the
// float32 evaluation's roundings dominate. Keeping 1 + r exact makes small |x| accurate.
const C2: f32 = 0.49999994;
const C3: f32 = 0.16666521;
const C4: f32 = 0.041668389;
const C5: f32 = 0.0083687101;
const C6: f32 = 0.0013814613;

/**
 * e^x per lane, within 0.99 float32 ulp (measured over every float32 x). x ≥ 88.7228 gives +Inf,
 * results below 2⁻¹²⁶ are denormal (gradual underflow), x ≤ −103.98 gives 0, NaN gives NaN, and
 * exp(0) = 1.
 */
// @ts-ignore: decorator
@inline export function expf32x4(x: v128): v128 {
  // f32x4.min/max keep NaN. The clamp bounds n to [−150, 128]: exp(89) already overflows and
  // exp(−104) rounds to 0, so the results there are the limits themselves.
  x = f32x4.max(f32x4.min(x, f32x4.splat(89)), f32x4.splat(-104));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));

  let q = f32x4.add(f32x4.mul(f32x4.splat(C6), r), f32x4.splat(C5));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(C4));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(C3));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(C2));
  const p = f32x4.add(f32x4.splat(1), f32x4.add(r, f32x4.mul(f32x4.mul(r, r), q)));

  // 2ⁿ as 2^(n>>1) · 2^(n − n>>1): each half stays a normal float32 for n in [−150, 128], so the
  // exponent bits can be built directly, 2¹²⁸ overflows in the product (not in the bits) and
  // results below 2⁻¹²⁶ round once, in the last product. A NaN lane gives n = 0 there: p stays NaN.
  const k = i32x4.trunc_sat_f32x4_s(n);
  const k1 = i32x4.shr_s(k, 1);
  const bias = i32x4.splat(127);
  const s1 = i32x4.shl(i32x4.add(k1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(k, k1), bias), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** h = e^z element-wise over len floats (h may be z); exported for the tests. */
export function exp(h: usize, z: usize, len: i32): void {
  const bytes = <usize>len << 2;
  const vecEnd = bytes & ~(<usize>15);
  let i: usize = 0;
  for (; i < vecEnd; i += 16) v128.store(h + i, expf32x4(v128.load(z + i)));
  for (; i < bytes; i += 4) store<f32>(h + i, f32x4.extract_lane(expf32x4(f32x4.splat(load<f32>(z + i))), 0));
}
