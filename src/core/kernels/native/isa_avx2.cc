// The AVX2 + FMA path (compiled with -mavx2 -mfma): a 6 × 16 register tile (12 ymm accumulators).
#include <immintrin.h>

namespace dptrain_avx2 {
struct V {
  using vec = __m256;
  static constexpr int VL = 8, NV = 2, MR = 6;
  // The narrow-output dot tile: 2 rows × 5 columns (10 accumulators).
  static constexpr int DR = 2, DJ = 5;
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec set1(float x) { return _mm256_set1_ps(x); }
  static inline vec load(const float* p) { return _mm256_load_ps(p); }
  static inline vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, vec x) { _mm256_store_ps(p, x); }
  static inline void storeu(float* p, vec x) { _mm256_storeu_ps(p, x); }
  static inline vec bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  // The lanes' sum in a fixed order: halves, then pairs, then the last two.
  static inline float sum(vec x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  // x > 0 ? x : 0 (NaN and −0 give +0, as the scalar ternary).
  static inline vec max(vec x, vec zero) { return _mm256_max_ps(x, zero); }
  static inline vec selectPositive(vec x, vec otherwise) { return _mm256_blendv_ps(otherwise, x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ)); }
};
}  // namespace dptrain_avx2

#define GEMM_NS dptrain_avx2
#define OPS_NAME "avx2"
#include "gemm.h"
#include "elementwise.h"

const dptrain::Ops* dptrain::avx2Ops() { return &dptrain_avx2::ops; }
