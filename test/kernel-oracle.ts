// What the kernel tests share: a shared WebAssembly memory with a bump allocator that misaligns
// views on purpose, seeded random fill, and a GEMM checked against the naive float64 oracle.

import { naiveKernels } from '../src/core/kernels/naive.js';
import type { F32, Kernels } from '../src/core/kernels/types.js';
import { Rng } from '../src/core/rng.js';

export interface TestArena {
  readonly memory: WebAssembly.Memory;
  /** A view of `floats` floats starting `skew` floats past a 64-byte boundary (skew 1–3: 4- but not 16-byte aligned). */
  alloc(floats: number, skew?: number): F32;
  /** Runs `body` with the allocations it made released afterwards. */
  scoped<T>(body: () => T): T;
}

/** `pages` of shared memory; the first 64 KiB stay unused (a view at offset 0 would hide off-by-one reads). */
export function testArena(pages: number): TestArena {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  let cursor = 65536;
  return {
    memory,
    alloc(floats, skew = 0) {
      const offset = cursor + skew * 4;
      cursor = Math.ceil((offset + floats * 4) / 64) * 64;
      if (cursor > pages * 65536) throw new RangeError('test arena exhausted');
      return new Float32Array(memory.buffer, offset, floats);
    },
    scoped(body) {
      const mark = cursor;
      try {
        return body();
      } finally {
        cursor = mark;
      }
    },
  };
}

export function fillRandom(v: F32, rng: Rng, lo = -1, hi = 1): F32 {
  for (let i = 0; i < v.length; i++) v[i] = rng.uniform(lo, hi);
  return v;
}

export type Layout = 'gemmNT' | 'gemmTN' | 'gemmNN';
export const LAYOUTS: readonly Layout[] = ['gemmNT', 'gemmTN', 'gemmNN'];

/**
 * Checks c = got against the oracle. The naive kernel sums in float64, the fast ones in float32
 * with k products and ≤ k + (k-blocks) additions per element, so by the standard bound on float
 * summation (γ_n = n·u/(1 − n·u), u = 2⁻²⁴) |got − exact| ≤ γ_{k+8} · (|c₀| + Σ_p |a_ip·b_pj|), plus one
 * rounding of the oracle's own float32 store. We allow 2·(k + 8)·u times that magnitude: a
 * rigorous, never-flaky bound that still catches a lost or doubled term (a relative error ≳ 1/k).
 */
export function checkGemm(got: F32, want: F32, magnitude: F32, k: number, what: string): void {
  const u = 2 ** -24;
  const scale = 2 * (k + 8) * u;
  for (let i = 0; i < want.length; i++) {
    const tol = scale * magnitude[i] + u * Math.abs(want[i]) + 1e-30;
    if (!(Math.abs(got[i] - want[i]) <= tol))
      throw new Error(`${what}: element ${i} is ${got[i]}, the oracle says ${want[i]} (tolerance ${tol})`);
  }
}

/** One seeded product on misaligned views, every backend against the oracle. */
export function gemmCase(arena: TestArena, layout: Layout, m: number, n: number, k: number, accumulate: boolean, seed: number, backends: readonly Kernels[]): void {
  arena.scoped(() => {
    const rng = new Rng(seed);
    const skews = [seed % 4, (seed + 1) % 4, (seed + 2) % 4];
    const a = fillRandom(arena.alloc(m * k, skews[0]), rng);
    const b = fillRandom(arena.alloc(n * k, skews[1]), rng);
    const c0 = fillRandom(new Float32Array(m * n), rng);
    const want = c0.slice();
    naiveKernels[layout](want, a, b, m, n, k, accumulate);
    // The magnitude of every term the sum rounds: the same product over |a|, |b| (plus |c₀|).
    const magnitude = new Float32Array(m * n).map((_, i) => (accumulate ? Math.abs(c0[i]) : 0));
    naiveKernels[layout](magnitude, a.map(Math.abs), b.map(Math.abs), m, n, k, true);
    for (const kernels of backends) {
      const c = arena.alloc(m * n, skews[2]);
      c.set(c0);
      kernels[layout](c, a, b, m, n, k, accumulate);
      checkGemm(c, want, magnitude, k, `${kernels.name} ${layout} ${m}×${n}×${k} accumulate=${accumulate}`);
    }
  });
}
