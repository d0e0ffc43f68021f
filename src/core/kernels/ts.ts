// The fast plain-TypeScript backend: both operands are packed into 4-wide panels (the transposes of
// the three layouts are absorbed by the packing), then one 4×4 register-tiled micro-kernel with
// scalar accumulators serves forward, dW and dX. K is blocked so a packed B block stays in L2.
// No allocation: packing goes to the scratch buffer given at construction.

import { tsElementwise } from './elementwise.js';
import type { F32, Kernels } from './types.js';

const MR = 4;
const NR = 4;
const KC = 256;
// The edge tile of a partial block (module-level: one per thread, no allocation per call).
const edgeTile = new Float64Array(MR * NR);

/** Floats of scratch the TS GEMMs need for products up to m×n×k. */
export function tsScratchFloats(maxM: number, maxN: number): number {
  return KC * (roundUp(maxM, MR) + roundUp(maxN, NR));
}

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

// How an operand is laid out: element (row, col) of the logical matrix sits at
// data[row * rowStride + col * colStride].
function packA(dst: F32, a: F32, rowStride: number, colStride: number, m: number, p0: number, kc: number): void {
  // Panels of MR rows; within a panel, for each p, MR consecutive values. Rows past m are zero.
  let o = 0;
  for (let i0 = 0; i0 < m; i0 += MR) {
    const rows = Math.min(MR, m - i0);
    for (let p = p0; p < p0 + kc; p++) {
      const base = p * colStride;
      let r = 0;
      for (; r < rows; r++) dst[o + r] = a[(i0 + r) * rowStride + base];
      for (; r < MR; r++) dst[o + r] = 0;
      o += MR;
    }
  }
}

function packB(dst: F32, b: F32, rowStride: number, colStride: number, n: number, p0: number, kc: number): void {
  // Panels of NR columns; within a panel, for each p, NR consecutive values. Columns past n are zero.
  let o = 0;
  for (let j0 = 0; j0 < n; j0 += NR) {
    const cols = Math.min(NR, n - j0);
    for (let p = p0; p < p0 + kc; p++) {
      const base = p * rowStride;
      let c = 0;
      for (; c < cols; c++) dst[o + c] = b[base + (j0 + c) * colStride];
      for (; c < NR; c++) dst[o + c] = 0;
      o += NR;
    }
  }
}

function gemm(
  scratch: F32,
  c: F32,
  a: F32, aRow: number, aCol: number,
  b: F32, bRow: number, bCol: number,
  m: number, n: number, k: number,
  accumulate: boolean,
): void {
  if (k === 0) {
    if (!accumulate) c.fill(0, 0, m * n);
    return;
  }
  const packedA = scratch;
  const packedB = scratch.subarray(KC * roundUp(m, MR));
  for (let p0 = 0; p0 < k; p0 += KC) {
    const kc = Math.min(KC, k - p0);
    const add = accumulate || p0 > 0;
    packA(packedA, a, aRow, aCol, m, p0, kc);
    packB(packedB, b, bRow, bCol, n, p0, kc);
    for (let i0 = 0; i0 < m; i0 += MR) {
      const aBase = (i0 / MR) * kc * MR;
      const rows = Math.min(MR, m - i0);
      for (let j0 = 0; j0 < n; j0 += NR) {
        const bBase = (j0 / NR) * kc * NR;
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        let ai = aBase;
        let bi = bBase;
        for (let p = 0; p < kc; p++, ai += MR, bi += NR) {
          const a0 = packedA[ai], a1 = packedA[ai + 1], a2 = packedA[ai + 2], a3 = packedA[ai + 3];
          const b0 = packedB[bi], b1 = packedB[bi + 1], b2 = packedB[bi + 2], b3 = packedB[bi + 3];
          c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
          c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
          c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
          c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        const cols = Math.min(NR, n - j0);
        if (rows === MR && cols === NR) {
          let o = i0 * n + j0;
          if (add) {
            c[o] += c00; c[o + 1] += c01; c[o + 2] += c02; c[o + 3] += c03; o += n;
            c[o] += c10; c[o + 1] += c11; c[o + 2] += c12; c[o + 3] += c13; o += n;
            c[o] += c20; c[o + 1] += c21; c[o + 2] += c22; c[o + 3] += c23; o += n;
            c[o] += c30; c[o + 1] += c31; c[o + 2] += c32; c[o + 3] += c33;
          } else {
            c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += n;
            c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += n;
            c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += n;
            c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
          }
        } else {
          const tile = edgeTile;
          tile[0] = c00; tile[1] = c01; tile[2] = c02; tile[3] = c03;
          tile[4] = c10; tile[5] = c11; tile[6] = c12; tile[7] = c13;
          tile[8] = c20; tile[9] = c21; tile[10] = c22; tile[11] = c23;
          tile[12] = c30; tile[13] = c31; tile[14] = c32; tile[15] = c33;
          for (let r = 0; r < rows; r++)
            for (let q = 0; q < cols; q++) {
              const o = (i0 + r) * n + j0 + q;
              c[o] = add ? c[o] + tile[r * NR + q] : tile[r * NR + q];
            }
        }
      }
    }
  }
}

export function createTsKernels(scratch: F32): Kernels {
  return {
    name: 'ts',
    ...tsElementwise,
    // a[m×k] row-major: (i, p) at i*k + p; b[n×k]: (p, j) at j*k + p.
    gemmNT: (c, a, b, m, n, k, acc) => gemm(scratch, c, a, k, 1, b, 1, k, m, n, k, acc),
    // a[k×m]: (i, p) at p*m + i; b[k×n]: (p, j) at p*n + j.
    gemmTN: (c, a, b, m, n, k, acc) => gemm(scratch, c, a, 1, m, b, n, 1, m, n, k, acc),
    // a[m×k]: (i, p) at i*k + p; b[k×n]: (p, j) at p*n + j.
    gemmNN: (c, a, b, m, n, k, acc) => gemm(scratch, c, a, k, 1, b, n, 1, m, n, k, acc),
  };
}
