// The three GEMM layouts over one register-blocked f32x4 micro-kernel (4 rows × 8 columns: 8 v128
// accumulators + 2 B vectors + 1 broadcast A = 11 live registers, under V8's 16 on x64). The
// transposes of the layouts are absorbed by the packing. Every pointer is a byte offset into the
// imported memory; packing goes to the caller's per-thread scratch (no module-level state).
// A dense layer's forward adds its bias and applies relu / leaky relu while the tile is still in
// registers (the epilogue of the last K block), so Z is never written and re-read.

import { packA, packB } from './pack';
import { MR, NR } from './tile';

// K is cut into blocks of at most KC so a packed B micro-panel (KC × NR, 16 KiB) stays in L1 and a
// packed A block (MC × KC, 256 KiB) in L2; the B block (KC × NC) streams from L3. KC 512 measured
// 1–3 % faster than 256 on the reference layers (784 → 2 blocks of 392, fewer partial-sum stores).
const KC: i32 = 512;
const MC: i32 = 128;
const NC: i32 = 256;
// Scratch: an MR × NR edge tile, then packed A, then packed B (bytes).
const TILE_BYTES: usize = <usize>(MR * NR * 4);

// The epilogue's activations (codes passed by wasm.ts). Its bias pointer 0 means no bias: offset 0
// lies in the memory's reserved first page, never in the arena.
const ACT_NONE: i32 = 0;
const ACT_RELU: i32 = 1;
const ACT_LEAKY: i32 = 2;

/** bias + act of one f32x4 of a finished tile (bv: the bias lanes, or zero). */
@inline function finish(x: v128, bv: v128, act: i32, slope: v128): v128 {
  x = f32x4.add(x, bv);
  if (act == ACT_RELU) return f32x4.pmax(f32x4.splat(0), x);
  if (act == ACT_LEAKY) return v128.bitselect(x, f32x4.mul(x, slope), f32x4.gt(x, f32x4.splat(0)));
  return x;
}

/** Floats of scratch a product with m ≤ maxM, n ≤ maxN needs (mirrored in wasm.ts). */
export function scratchFloats(maxM: i32, maxN: i32): i32 {
  // +4 floats: the scratch base is rounded up to 16 bytes.
  return 4 + MR * NR + KC * (min(MC, roundUp(maxM, MR)) + min(NC, roundUp(maxN, NR)));
}

@inline function roundUp(x: i32, r: i32): i32 {
  return ((x + r - 1) / r) * r;
}

// ---- micro-kernel ----------------------------------------------------------------------------

/**
 * C[rows × cols] at c (row pitch ldc bytes) (+)= packed A panel · packed B panel over kc steps.
 * Always computes the full MR × NR tile; edge tiles go through the scratch tile.
 */
function microKernel(
  pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, rows: i32, cols: i32, add: bool, tile: usize,
  bias: usize, act: i32, slope: f32,
): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00;
  let c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = f32x4.add(c00, f32x4.mul(a, b0));
    c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 4);
    c10 = f32x4.add(c10, f32x4.mul(a, b0));
    c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 8);
    c20 = f32x4.add(c20, f32x4.mul(a, b0));
    c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 12);
    c30 = f32x4.add(c30, f32x4.mul(a, b0));
    c31 = f32x4.add(c31, f32x4.mul(a, b1));
    pa += 16;
    pb += 32;
  }
  if (rows == MR && cols == NR) {
    const r1 = c + ldc, r2 = r1 + ldc, r3 = r2 + ldc;
    if (add) {
      c00 = f32x4.add(c00, v128.load(c));
      c01 = f32x4.add(c01, v128.load(c, 16));
      c10 = f32x4.add(c10, v128.load(r1));
      c11 = f32x4.add(c11, v128.load(r1, 16));
      c20 = f32x4.add(c20, v128.load(r2));
      c21 = f32x4.add(c21, v128.load(r2, 16));
      c30 = f32x4.add(c30, v128.load(r3));
      c31 = f32x4.add(c31, v128.load(r3, 16));
    }
    if (bias != 0 || act != ACT_NONE) {
      const b0 = bias != 0 ? v128.load(bias) : f32x4.splat(0);
      const b1 = bias != 0 ? v128.load(bias, 16) : f32x4.splat(0);
      const s = f32x4.splat(slope);
      c00 = finish(c00, b0, act, s);
      c01 = finish(c01, b1, act, s);
      c10 = finish(c10, b0, act, s);
      c11 = finish(c11, b1, act, s);
      c20 = finish(c20, b0, act, s);
      c21 = finish(c21, b1, act, s);
      c30 = finish(c30, b0, act, s);
      c31 = finish(c31, b1, act, s);
    }
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(r1, c10);
    v128.store(r1, c11, 16);
    v128.store(r2, c20);
    v128.store(r2, c21, 16);
    v128.store(r3, c30);
    v128.store(r3, c31, 16);
    return;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  storeEdge(tile, c, ldc, rows, cols, add, bias, act, slope);
}

/**
 * The narrow edge: C[rows × cols ≤ 4] (+)= packed A panel · the first half of a packed B panel.
 * Half the work of the full kernel where a 10-wide output leaves a 2-column panel.
 */
function microKernelNarrow(
  pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, rows: i32, cols: i32, add: bool, tile: usize,
  bias: usize, act: i32, slope: f32,
): void {
  let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b = v128.load(pb);
    c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(pa), b));
    c1 = f32x4.add(c1, f32x4.mul(v128.load32_splat(pa, 4), b));
    c2 = f32x4.add(c2, f32x4.mul(v128.load32_splat(pa, 8), b));
    c3 = f32x4.add(c3, f32x4.mul(v128.load32_splat(pa, 12), b));
    pa += 16;
    pb += 32;
  }
  v128.store(tile, c0);
  v128.store(tile, c1, 32);
  v128.store(tile, c2, 64);
  v128.store(tile, c3, 96);
  storeEdge(tile, c, ldc, rows, cols, add, bias, act, slope);
}

/** Copies (or adds) the rows × cols corner of the scratch tile (row pitch NR floats) into C, then the epilogue. */
function storeEdge(tile: usize, c: usize, ldc: usize, rows: i32, cols: i32, add: bool, bias: usize, act: i32, slope: f32): void {
  for (let r = 0; r < rows; r++) {
    const dst = c + <usize>r * ldc;
    const src = tile + (<usize>r << 5);
    for (let q = 0; q < cols; q++) {
      const o = <usize>q << 2;
      let v = load<f32>(src + o);
      if (add) v = load<f32>(dst + o) + v;
      if (bias != 0) v += load<f32>(bias + o);
      if (act == ACT_RELU) v = v > 0 ? v : 0;
      else if (act == ACT_LEAKY) v = v > 0 ? v : slope * v;
      store<f32>(dst + o, v);
    }
  }
}

// ---- driver ----------------------------------------------------------------------------------

/**
 * c[m×n] (+)= A·B where A(i, p) is read by rows (aByRows: a[i·lda + p]) or columns (a[p·lda + i])
 * and B(p, j) by columns (bByCols: b[j·ldb + p]) or rows (b[p·ldb + j]).
 * Loop order as in BLIS: N blocks → K blocks (pack B) → M blocks (pack A) → B micro-panels → A
 * micro-panels, so the packed B block and A block stay in L2 whatever m, n and k are.
 */
function gemm(
  c: usize, a: usize, lda: usize, aByRows: bool, b: usize, ldb: usize, bByCols: bool,
  m: i32, n: i32, k: i32, accumulate: bool, scratch: usize, bias: usize, act: i32, slope: f32,
): void {
  if (m <= 0 || n <= 0) return;
  // k = 0 would skip the epilogue: only the plain products allow it (the layer never has nIn 0).
  if (k <= 0) {
    if (!accumulate) memory.fill(c, 0, <usize>m * <usize>n * 4);
    return;
  }
  const tile = (scratch + 15) & ~(<usize>15);
  const packedA = tile + TILE_BYTES;
  // Even splits, so 784 becomes 4 × 196 rather than 3 × 256 + 16.
  const kcMax = evenBlock(k, KC, 1);
  const mcMax = evenBlock(m, MC, MR);
  const ncMax = evenBlock(n, NC, NR);
  const packedB = packedA + <usize>mcMax * <usize>kcMax * 4;
  const ldc = <usize>n << 2;
  for (let j0 = 0; j0 < n; j0 += ncMax) {
    const nc = min(ncMax, n - j0);
    for (let p0 = 0; p0 < k; p0 += kcMax) {
      const kc = min(kcMax, k - p0);
      const add = accumulate || p0 > 0;
      // The epilogue belongs to the last K block only: earlier blocks store partial sums.
      const last = p0 + kc >= k;
      const blockAct = last ? act : ACT_NONE;
      packB(packedB, b, ldb, bByCols, j0, nc, p0, kc);
      for (let i0 = 0; i0 < m; i0 += mcMax) {
        const mc = min(mcMax, m - i0);
        packA(packedA, a + (aByRows ? <usize>i0 * lda : <usize>i0) * 4, lda, aByRows, mc, p0, kc);
        // B micro-panel outer (it stays in L1), A micro-panels streamed from L2 inner.
        for (let jr = 0; jr < nc; jr += NR) {
          const pb = packedB + <usize>(jr / NR) * <usize>kc * 32;
          const cols = min(NR, nc - jr);
          const cj = c + <usize>i0 * ldc + (<usize>(j0 + jr) << 2);
          const bj = last && bias != 0 ? bias + (<usize>(j0 + jr) << 2) : 0;
          for (let ir = 0; ir < mc; ir += MR) {
            const pa = packedA + <usize>(ir / MR) * <usize>kc * 16;
            const cij = cj + <usize>ir * ldc;
            const rows = min(MR, mc - ir);
            if (cols > 4) microKernel(pa, pb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
            else microKernelNarrow(pa, pb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
          }
        }
      }
    }
  }
}

/** The block size of an even split of x into blocks of at most max, rounded up to a multiple of r. */
@inline function evenBlock(x: i32, max: i32, r: i32): i32 {
  const blocks = (x + max - 1) / max;
  return roundUp((x + blocks - 1) / blocks, r);
}

/** c[m×n] (+)= a[m×k] · bᵀ, b stored [n×k]. */
export function gemmNT(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32, accumulate: bool, scratch: usize): void {
  gemm(c, a, <usize>k, true, b, <usize>k, true, m, n, k, accumulate, scratch, 0, ACT_NONE, 0);
}

/**
 * A dense layer's forward in one pass: h[m×n] = act(a[m×k] · wᵀ + bias), w stored [n×k], bias
 * n floats (0: none), act 0 identity, 1 relu, 2 leaky relu with `slope`.
 */
export function linearForward(h: usize, a: usize, w: usize, bias: usize, m: i32, n: i32, k: i32, act: i32, slope: f32, scratch: usize): void {
  gemm(h, a, <usize>k, true, w, <usize>k, true, m, n, k, false, scratch, bias, act, slope);
}

/** c[m×n] (+)= aᵀ · b, a stored [k×m], b [k×n]. */
export function gemmTN(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32, accumulate: bool, scratch: usize): void {
  gemm(c, a, <usize>m, false, b, <usize>n, false, m, n, k, accumulate, scratch, 0, ACT_NONE, 0);
}

/** c[m×n] (+)= a[m×k] · b[k×n]. */
export function gemmNN(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32, accumulate: bool, scratch: usize): void {
  gemm(c, a, <usize>k, true, b, <usize>n, false, m, n, k, accumulate, scratch, 0, ACT_NONE, 0);
}
