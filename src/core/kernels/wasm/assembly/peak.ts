// Not a kernel: the register-only f32x4 multiply + add loop the benchmark divides by, so the
// products' GFLOP/s can be read as a fraction of this machine's 128-bit SIMD ceiling.

/**
 * 10 independent accumulators, acc += x·c, with x stepped once per iteration so nothing is loop
 * invariant. Returns the sum (so the work is not dead). Operations per iteration: 10 mul + 11 add.
 */
export function peakMulAdd(iters: i32, x0: f32, c0: f32, c1: f32, step: f32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
  let x = f32x4.splat(x0);
  // Splats of parameters, not constants, so V8 keeps them in registers.
  const u = f32x4.splat(c0), w = f32x4.splat(c1), d = f32x4.splat(step);
  for (let i = 0; i < iters; i++) {
    a0 = f32x4.add(a0, f32x4.mul(x, u));
    a1 = f32x4.add(a1, f32x4.mul(x, w));
    a2 = f32x4.add(a2, f32x4.mul(x, u));
    a3 = f32x4.add(a3, f32x4.mul(x, w));
    a4 = f32x4.add(a4, f32x4.mul(x, u));
    a5 = f32x4.add(a5, f32x4.mul(x, w));
    a6 = f32x4.add(a6, f32x4.mul(x, u));
    a7 = f32x4.add(a7, f32x4.mul(x, w));
    a8 = f32x4.add(a8, f32x4.mul(x, u));
    a9 = f32x4.add(a9, f32x4.mul(x, w));
    x = f32x4.add(x, d);
  }
  const s = f32x4.add(
    f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))),
    f32x4.add(a8, a9),
  );
  return f32x4.extract_lane(s, 0);
}
