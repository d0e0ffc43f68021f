// The AVX-512F path (compiled with -mavx512f -mavx2 -mfma): an 8 × 32 register tile (16 zmm
// accumulators, 2 B vectors, the A values broadcast from memory).
#include <immintrin.h>

namespace dptrain_avx512 {
struct V {
  using vec = __m512;
  static constexpr int VL = 16, NV = 2, MR = 8;
  // The narrow-output dot tile: 4 rows × 5 columns (20 accumulators).
  static constexpr int DR = 4, DJ = 5;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec set1(float x) { return _mm512_set1_ps(x); }
  static inline vec load(const float* p) { return _mm512_load_ps(p); }
  static inline vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, vec x) { _mm512_store_ps(p, x); }
  static inline void storeu(float* p, vec x) { _mm512_storeu_ps(p, x); }
  static inline vec bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  // The lanes' sum in a fixed order: halves, then as the AVX2 path's 8 lanes.
  static inline float sum(vec x) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline vec max(vec x, vec zero) { return _mm512_max_ps(x, zero); }
  static inline vec selectPositive(vec x, vec otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), otherwise, x);
  }
};
}  // namespace dptrain_avx512

#define GEMM_NS dptrain_avx512
#define OPS_NAME "avx512"
#include "gemm.h"
#include "elementwise.h"

const dptrain::Ops* dptrain::avx512Ops() { return &dptrain_avx512::ops; }
