// The packed GEMM, written once over a vector trait V and included by each ISA's translation unit
// (isa_avx2.cc, isa_avx512.cc) inside its own namespace. BLIS's loop order and packing: N blocks →
// K blocks (pack B) → M blocks (pack A) → B micro-panels → A micro-panels, an MR × NR register tile
// of explicit FMAs. Everything outside the micro-kernel's FMAs is compiled with -ffp-contract=off.
#pragma once
#include <immintrin.h>
#include <cstring>
#include <algorithm>
#include "ops.h"

namespace GEMM_NS {
using namespace dptrain;

constexpr int MR = V::MR;
constexpr int VL = V::VL;
constexpr int NR = V::NV * VL;
using vec = typename V::vec;

// 8×8 transpose of floats: line r (src + r·ld, 8 values along p) into dst + p·stride + r.
static inline void transpose8(float* dst, long stride, const float* src, long ld) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld), r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
  __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld), r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5), t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * stride, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * stride, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * stride, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * stride, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * stride, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * stride, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * stride, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// `count` lines contiguous along p (line r at src + r·ld) into dst, p-major, `width` floats per p;
// lines count..width-1 are zero. Groups of 8 full lines go through 8×8 register transposes.
static void packLines(float* dst, const float* src, long ld, int count, int width, int kc) {
  int r0 = 0;
  for (; r0 + 8 <= count; r0 += 8) {
    const float* s = src + r0 * ld;
    int p = 0;
    for (; p + 8 <= kc; p += 8) transpose8(dst + (long)p * width + r0, width, s + p, ld);
    for (; p < kc; p++)
      for (int r = 0; r < 8; r++) dst[(long)p * width + r0 + r] = s[r * ld + p];
  }
  for (int r = r0; r < count; r++) {
    const float* s = src + r * ld;
    for (int p = 0; p < kc; p++) dst[(long)p * width + r] = s[p];
  }
  if (count < width)
    for (int p = 0; p < kc; p++)
      for (int r = count; r < width; r++) dst[(long)p * width + r] = 0.f;
}

// `count` values contiguous along the panels (value r of step p at src + p·ld + r) into panels of
// `width`, each p-major with `width` floats per p (kc·width floats a panel); values past count are
// zero. Row by row of the source, so each of its lines is read once, in order.
static void packRuns(float* dst, const float* src, long ld, int count, int width, int kc) {
  const long panel = (long)kc * width;
  for (int p = 0; p < kc; p++) {
    const float* s = src + (long)p * ld;
    float* d = dst + (long)p * width;
    int q = 0;
    for (; q + width <= count; q += width, d += panel) std::memcpy(d, s + q, sizeof(float) * width);
    if (q < count) {
      std::memcpy(d, s + q, sizeof(float) * (count - q));
      for (int r = count - q; r < width; r++) d[r] = 0.f;
    }
  }
}

// A(i0.., p0..p0+kc) in panels of MR rows.
static void packA(float* dst, const float* a, long lda, bool aByRows, int i0, int mc, int p0, int kc) {
  if (!aByRows) return packRuns(dst, a + (long)p0 * lda + i0, lda, mc, MR, kc);
  for (int ir = 0; ir < mc; ir += MR) {
    const int rows = std::min(MR, mc - ir);
    const int i = i0 + ir;
    packLines(dst, a + (long)i * lda + p0, lda, rows, MR, kc);
    dst += (long)kc * MR;
  }
}

// B(p0..p0+kc, j0..j0+nc) in panels of NR columns.
static void packB(float* dst, const float* b, long ldb, bool bByCols, int j0, int nc, int p0, int kc) {
  if (!bByCols) return packRuns(dst, b + (long)p0 * ldb + j0, ldb, nc, NR, kc);
  for (int jr = 0; jr < nc; jr += NR) {
    const int cols = std::min(NR, nc - jr);
    packLines(dst, b + (long)(j0 + jr) * ldb + p0, ldb, cols, NR, kc);
    dst += (long)kc * NR;
  }
}

static inline float finishScalar(float v, int act, float slope) {
  if (act == ACT_RELU) return v > 0.f ? v : 0.f;
  if (act == ACT_LEAKY) return v > 0.f ? v : slope * v;
  return v;
}

// The register tile: NW (≤ V::NV) vectors per row of the B panel (row pitch NR floats), the first RR
// (≤ MR) rows of the A panel. Full tiles store straight from registers (C (+), bias, activation in
// that order); edge tiles go through `tile` and the same steps in scalars, which round alike.
template <int NW, int RR>
static inline void microKernel(const float* pa, const float* pb, long ldpb, int kc, float* c, long ldc, int rows, int cols, bool add,
                               float* tile, const float* bias, int act, float slope) {
  vec acc[RR][NW];
#pragma GCC unroll 16
  for (int r = 0; r < RR; r++)
#pragma GCC unroll 4
    for (int w = 0; w < NW; w++) acc[r][w] = V::zero();
  for (int p = 0; p < kc; p++) {
    vec bv[NW];
#pragma GCC unroll 4
    for (int w = 0; w < NW; w++) bv[w] = V::loadu(pb + w * VL);
#pragma GCC unroll 16
    for (int r = 0; r < RR; r++) {
      const vec av = V::bcast(pa + r);
#pragma GCC unroll 4
      for (int w = 0; w < NW; w++) acc[r][w] = V::fma(av, bv[w], acc[r][w]);
    }
    pa += MR;
    pb += ldpb;
  }
  if (rows == RR && cols == NW * VL) {
    const vec zero = V::zero();
    const vec s = V::set1(slope);
#pragma GCC unroll 16
    for (int r = 0; r < RR; r++) {
      float* cr = c + r * ldc;
#pragma GCC unroll 4
      for (int w = 0; w < NW; w++) {
        vec x = acc[r][w];
        if (add) x = V::add(x, V::loadu(cr + w * VL));
        if (bias) x = V::add(x, V::loadu(bias + w * VL));
        if (act == ACT_RELU) x = V::max(x, zero);
        else if (act == ACT_LEAKY) x = V::selectPositive(x, V::mul(x, s));
        V::storeu(cr + w * VL, x);
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (int r = 0; r < RR; r++)
#pragma GCC unroll 4
    for (int w = 0; w < NW; w++) V::store(tile + r * NR + w * VL, acc[r][w]);
  for (int r = 0; r < rows; r++) {
    float* cr = c + r * ldc;
    const float* t = tile + r * NR;
    for (int q = 0; q < cols; q++) {
      float v = t[q];
      if (add) v = v + cr[q];
      if (bias) v = v + bias[q];
      cr[q] = finishScalar(v, act, slope);
    }
  }
}

// C[m×n] (+)= A·Bᵀ for a narrow n, both operands contiguous along k (the output layer's forward):
// DR rows × DJ columns of dot products along k at a time, on the unpacked operands (the rows of A
// in L1 while all of B, n·k floats, stays there too). Lanes sum in a fixed order, then the k tail.
template <int R, int J>
static inline void dotTile(const float* a, const float* b, long k, float* c, long ldc, bool add, const float* bias, int act, float slope) {
  vec acc[R][J];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) acc[r][j] = V::zero();
  long p = 0;
  for (; p + VL <= k; p += VL) {
    vec av[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) av[r] = V::loadu(a + r * k + p);
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) {
      const vec bv = V::loadu(b + j * k + p);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) acc[r][j] = V::fma(av[r], bv, acc[r][j]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < J; j++) {
      float s = V::sum(acc[r][j]);
      for (long q = p; q < k; q++) s = s + a[r * k + q] * b[j * k + q];
      float* cij = c + r * ldc + j;
      if (add) s = s + *cij;
      if (bias) s = s + bias[j];
      *cij = finishScalar(s, act, slope);
    }
}

constexpr int DOT_MAX_N = 12;

static void dotNT(float* c, const float* a, const float* b, int m, int n, int k, bool add, const float* bias, int act, float slope) {
  constexpr int R = V::DR, J = V::DJ;
  for (int i0 = 0; i0 < m; i0 += R) {
    const float* ai = a + (long)i0 * k;
    float* ci = c + (long)i0 * n;
    const bool fullRows = i0 + R <= m;
    int j0 = 0;
    for (; j0 + J <= n; j0 += J) {
      const float* bj = b + (long)j0 * k;
      const float* biasj = bias ? bias + j0 : nullptr;
      if (fullRows) dotTile<R, J>(ai, bj, k, ci + j0, n, add, biasj, act, slope);
      else for (int r = 0; i0 + r < m; r++) dotTile<1, J>(ai + (long)r * k, bj, k, ci + (long)r * n + j0, n, add, biasj, act, slope);
    }
    for (; j0 < n; j0++) {
      const float* bj = b + (long)j0 * k;
      const float* biasj = bias ? bias + j0 : nullptr;
      if (fullRows) dotTile<R, 1>(ai, bj, k, ci + j0, n, add, biasj, act, slope);
      else for (int r = 0; i0 + r < m; r++) dotTile<1, 1>(ai + (long)r * k, bj, k, ci + (long)r * n + j0, n, add, biasj, act, slope);
    }
  }
}

static inline int evenBlock(int x, int max, int r) {
  const int blocks = (x + max - 1) / max;
  return roundUp((x + blocks - 1) / blocks, r);
}

static void gemm(float* c, const float* a, bool aByRows, const float* b, bool bByCols, int m, int n, int k, bool accumulate,
                 float* scratch, const float* bias, int act, float slope) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) std::memset(c, 0, sizeof(float) * (size_t)m * n);
    return;
  }
  if (aByRows && bByCols && n <= DOT_MAX_N) return dotNT(c, a, b, m, n, k, accumulate, bias, act, slope);
  const long lda = aByRows ? k : m;
  const long ldb = bByCols ? k : n;
  const long ldc = n;
  // 64-byte aligned tile and packed panels, whatever the scratch view's offset.
  float* tile = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  const int kcMax = evenBlock(k, KC, 1);
  const int mcMax = evenBlock(m, MC, MR);
  const int ncMax = evenBlock(n, NC, NR);
  float* packedA = tile + TILE_FLOATS;
  // Packed B is read with aligned vector loads: its start is rounded up to 64 bytes.
  float* packedB = packedA + roundUp(mcMax * kcMax, 16);
  for (int j0 = 0; j0 < n; j0 += ncMax) {
    const int nc = std::min(ncMax, n - j0);
    for (int p0 = 0; p0 < k; p0 += kcMax) {
      const int kc = std::min(kcMax, k - p0);
      const bool add = accumulate || p0 > 0;
      // The epilogue belongs to the last K block only: earlier blocks store partial sums.
      const bool last = p0 + kc >= k;
      const int blockAct = last ? act : ACT_NONE;
      // With at most two A micro-panels B's panels are read once or twice: a row-major B is then
      // read in place (its full panels), not copied first.
      const bool bDirect = !bByCols && m <= 2 * MR;
      if (!bDirect) packB(packedB, b, ldb, bByCols, j0, nc, p0, kc);
      for (int i0 = 0; i0 < m; i0 += mcMax) {
        const int mc = std::min(mcMax, m - i0);
        packA(packedA, a, lda, aByRows, i0, mc, p0, kc);
        for (int jr = 0; jr < nc; jr += NR) {
          const int cols = std::min(NR, nc - jr);
          const float* pb = packedB + (long)(jr / NR) * kc * NR;
          long ldpb = NR;
          if (bDirect && cols == NR) {
            pb = b + (long)p0 * ldb + j0 + jr;
            ldpb = ldb;
          } else if (bDirect) {
            packRuns(packedB, b + (long)p0 * ldb + j0 + jr, ldb, cols, NR, kc);
            pb = packedB;
          }
          float* cj = c + (long)i0 * ldc + j0 + jr;
          const float* bj = last && bias ? bias + j0 + jr : nullptr;
          for (int ir = 0; ir < mc; ir += MR) {
            const float* pa = packedA + (long)(ir / MR) * kc * MR;
            const int rows = std::min(MR, mc - ir);
            float* cij = cj + (long)ir * ldc;
            // Narrow or short edge panels (10 rows or columns) run only the vectors and rows they need.
            const bool narrow = V::NV > 1 && cols <= VL, low = rows <= MR / 2;
            if (narrow && low) microKernel<1, MR / 2>(pa, pb, ldpb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
            else if (narrow) microKernel<1, MR>(pa, pb, ldpb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
            else if (low) microKernel<V::NV, MR / 2>(pa, pb, ldpb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
            else microKernel<V::NV, MR>(pa, pb, ldpb, kc, cij, ldc, rows, cols, add, tile, bj, blockAct, slope);
          }
        }
      }
    }
  }
}

}  // namespace GEMM_NS
