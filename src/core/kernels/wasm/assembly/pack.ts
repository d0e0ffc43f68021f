// Packing for the GEMMs: copies a K block of each operand into the panel layout the micro-kernel
// reads, absorbing the transposes of the three layouts (4×4 register transposes where an operand
// runs along k, straight v128 copies where it runs along the panel). Edges are zero-filled.

import { MR, NR } from './tile';

// Packed A: panels of MR rows; within a panel, for each p, MR consecutive floats (16 bytes).
// Packed B: panels of NR columns; within a panel, for each p, NR consecutive floats (32 bytes).
// Rows/columns past the matrix edge are zero, so the micro-kernel always runs full tiles.

/**
 * Packs `count` (≤ 4) lines that are contiguous along p (line r starts at src + r·ld bytes) into
 * dst, p-major: values of p at dst + p·stride, line r at +4r. Lines count..width-1 are zeroed.
 * Full groups of 4 are transposed 4×4 in registers.
 */
function packLines(dst: usize, stride: usize, src: usize, ld: usize, count: i32, width: i32, kc: i32): void {
  let p = 0;
  if (count == 4) {
    const r1 = src + ld, r2 = r1 + ld, r3 = r2 + ld;
    for (; p + 4 <= kc; p += 4) {
      const off = <usize>p << 2;
      const x0 = v128.load(src + off);
      const x1 = v128.load(r1 + off);
      const x2 = v128.load(r2 + off);
      const x3 = v128.load(r3 + off);
      const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5);
      const t1 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
      const t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
      const d = dst + <usize>p * stride;
      v128.store(d, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(d + stride, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(d + 2 * stride, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(d + 3 * stride, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
    }
  }
  for (; p < kc; p++) {
    const d = dst + <usize>p * stride;
    const s = src + (<usize>p << 2);
    let r = 0;
    for (; r < count; r++) store<f32>(d + (<usize>r << 2), load<f32>(s + <usize>r * ld));
    for (; r < width; r++) store<f32>(d + (<usize>r << 2), 0);
  }
}

/**
 * Packs `count` (≤ width) values that are contiguous along the panel (value r of step p at
 * src + p·ld + 4r) into dst, p-major with `width` floats per p; values past count are zeroed.
 */
function packRuns(dst: usize, src: usize, ld: usize, count: i32, width: i32, kc: i32): void {
  const stride = <usize>width << 2;
  if (count == width) {
    for (let p = 0; p < kc; p++) {
      const d = dst + <usize>p * stride;
      const s = src + <usize>p * ld;
      for (let r: usize = 0; r < stride; r += 16) v128.store(d + r, v128.load(s + r));
    }
    return;
  }
  for (let p = 0; p < kc; p++) {
    const d = dst + <usize>p * stride;
    const s = src + <usize>p * ld;
    let r = 0;
    for (; r < count; r++) store<f32>(d + (<usize>r << 2), load<f32>(s + (<usize>r << 2)));
    for (; r < width; r++) store<f32>(d + (<usize>r << 2), 0);
  }
}

/** A's block of columns p0..p0+kc, all m rows. aByRows: a(i, p) at i·lda + p, else at p·lda + i. */
export function packA(dst: usize, a: usize, lda: usize, aByRows: bool, m: i32, p0: i32, kc: i32): void {
  const panel = <usize>kc * 16;
  for (let i0 = 0; i0 < m; i0 += MR) {
    const rows = min(MR, m - i0);
    if (aByRows) packLines(dst, 16, a + (<usize>i0 * lda + <usize>p0) * 4, lda * 4, rows, MR, kc);
    else packRuns(dst, a + (<usize>p0 * lda + <usize>i0) * 4, lda * 4, rows, MR, kc);
    dst += panel;
  }
}

/** B's block p0..p0+kc × j0..j0+nc. bByCols: b(p, j) at j·ldb + p (p contiguous), else p·ldb + j. */
export function packB(dst: usize, b: usize, ldb: usize, bByCols: bool, j0: i32, nc: i32, p0: i32, kc: i32): void {
  const panel = <usize>kc * 32;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const j = j0 + jr;
    if (bByCols) {
      const src = b + (<usize>j * ldb + <usize>p0) * 4;
      packLines(dst, 32, src, ldb * 4, min(4, cols), 4, kc);
      packLines(dst + 16, 32, src + 16 * ldb, ldb * 4, max(0, cols - 4), 4, kc);
    } else {
      packRuns(dst, b + (<usize>p0 * ldb + <usize>j) * 4, ldb * 4, cols, NR, kc);
    }
    dst += panel;
  }
}
