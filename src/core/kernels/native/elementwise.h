// The element-wise passes, loss gradients and optimizer slices in plain scalar C++, included by each
// ISA's translation unit so the compiler vectorizes them for that path. Compiled with
// -ffp-contract=off: every operation rounds as the wasm module's (wasm/assembly/*.ts) does, in the
// same order, so these give the wasm backend's bits on either path.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include "ops.h"

namespace GEMM_NS {

static inline float bitsToFloat(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline uint32_t floatToBits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// exp as wasm/assembly/exp.ts: Cody–Waite reduction, degree-6 polynomial, 2ⁿ in two halves.
static inline float expLane(float x) {
  x = x > 89.f ? 89.f : x;  // NaN stays NaN, as f32x4.min/max keep it
  x = x < -104.f ? -104.f : x;
  const float n = std::nearbyint(x * 1.44269504f);
  float r = x - n * bitsToFloat(0x3f317200u);
  r = r - n * bitsToFloat(0x35bfbe8eu);
  float q = 0.0013814613f * r + 0.0083687101f;
  q = q * r + 0.041668389f;
  q = q * r + 0.16666521f;
  q = q * r + 0.49999994f;
  const float p = 1.f + (r + (r * r) * q);
  const int k = n == n ? (int)n : 0;  // i32x4.trunc_sat gives 0 for NaN
  const int k1 = k >> 1;
  const float s1 = bitsToFloat((uint32_t)(k1 + 127) << 23);
  const float s2 = bitsToFloat((uint32_t)(k - k1 + 127) << 23);
  return (p * s1) * s2;
}

static inline float sigmoidLane(float z) {
  const float e = expLane(-std::fabs(z));
  return (z < 0.f ? e : 1.f) / (1.f + e);
}

static inline float tanhLane(float z) {
  const float a = std::fabs(z);
  const float large = 1.f - 2.f / (expLane(a + a) + 1.f);
  const float w = a * a;
  float p = -0.0061798161f * w + 0.021007463f;
  p = p * w + -0.05383743f;
  p = p * w + 0.13332452f;
  p = p * w + -0.33333313f;
  const float small = a + (a * w) * p;
  const float t = a < 0.5625f ? small : large;
  return bitsToFloat(floatToBits(t) | (floatToBits(z) & 0x80000000u));
}

static void addBias(float* z, const float* bias, int rows, int cols) {
  for (int r = 0; r < rows; r++, z += cols)
    for (int j = 0; j < cols; j++) z[j] = z[j] + bias[j];
}

// Rows added in order into the running value, as the TypeScript and wasm loops do.
static void colSum(float* dBias, const float* dz, int rows, int cols) {
  constexpr int B = 64;
  for (int j0 = 0; j0 < cols; j0 += B) {
    const int w = cols - j0 < B ? cols - j0 : B;
    float s[B];
    for (int j = 0; j < w; j++) s[j] = dBias[j0 + j];
    for (int r = 0; r < rows; r++) {
      const float* row = dz + (long)r * cols + j0;
      for (int j = 0; j < w; j++) s[j] = s[j] + row[j];
    }
    for (int j = 0; j < w; j++) dBias[j0 + j] = s[j];
  }
}

static void activate(int kind, float* h, const float* z, int len, float slope) {
  switch (kind) {
    case K_IDENTITY:
      if (h != z) std::memmove(h, z, sizeof(float) * len);
      return;
    case K_RELU:
      for (int i = 0; i < len; i++) { const float x = z[i]; h[i] = x > 0.f ? x : 0.f; }
      return;
    case K_LEAKY:
      for (int i = 0; i < len; i++) { const float x = z[i]; h[i] = x > 0.f ? x : slope * x; }
      return;
    case K_SIGMOID:
      for (int i = 0; i < len; i++) h[i] = sigmoidLane(z[i]);
      return;
    case K_TANH:
      for (int i = 0; i < len; i++) h[i] = tanhLane(z[i]);
      return;
  }
}

static void activateBackward(int kind, float* d, const float* h, int len, float slope) {
  switch (kind) {
    case K_RELU:
      for (int i = 0; i < len; i++) d[i] = h[i] > 0.f ? d[i] : 0.f;
      return;
    case K_LEAKY:
      for (int i = 0; i < len; i++) d[i] = h[i] > 0.f ? d[i] : slope * d[i];
      return;
    case K_SIGMOID:
      for (int i = 0; i < len; i++) { const float y = h[i]; d[i] = d[i] * (y * (1.f - y)); }
      return;
    case K_TANH:
      // (1 − h)(1 + h): one factor is exact near saturation, where 1 − h² would cancel.
      for (int i = 0; i < len; i++) { const float y = h[i]; d[i] = d[i] * ((1.f - y) * (1.f + y)); }
      return;
    default:
      return;
  }
}

// ln x for a finite x > 0, the series of wasm/assembly/loss.ts (so the loss sums match its bits).
static double logF64(double x) {
  // A diverged row (a NaN or infinite sum) must not come out as a finite number.
  if (!(x > 0) || x == INFINITY) return x == INFINITY ? x : NAN;
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  int k = (int)(bits >> 52) - 1023;
  const uint64_t mb = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  std::memcpy(&m, &mb, 8);
  if (m > 1.4142135623730951) { m *= 0.5; k++; }
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double t = 1.0 / 21;
  for (int j = 9; j >= 0; j--) t = t * s2 + 1.0 / (double)(2 * j + 1);
  return (double)k * 0.6931471805599453 + 2 * s * t;
}

static inline float maxNaN(float a, float b) {
  if (a != a || b != b) return NAN;
  return a > b ? a : b;
}

// Softmax + cross-entropy on logits, per row: subtract the row's max before exp, sum in f64 in the
// wasm module's lane order (lanes 0+2 and 1+3 of each group of 4), dh = p − onehot.
static double crossEntropyGrad(float* dh, const float* h, const float* y, int rows, int cols) {
  const int vecEnd = cols & ~3;
  double lossSum = 0;
  for (int r = 0; r < rows; r++, h += cols, dh += cols) {
    float lane[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int j = 0;
    for (; j < vecEnd; j += 4)
      for (int l = 0; l < 4; l++) lane[l] = maxNaN(lane[l], h[j + l]);
    float rowMax = maxNaN(maxNaN(lane[0], lane[1]), maxNaN(lane[2], lane[3]));
    for (; j < cols; j++) rowMax = maxNaN(rowMax, h[j]);
    const int target = (int)y[r];
    const float logit = h[target];  // read before dh is written: dh may be h
    double s0 = 0, s1 = 0;
    for (j = 0; j < vecEnd; j += 4) {
      float e[4];
      for (int l = 0; l < 4; l++) e[l] = dh[j + l] = expLane(h[j + l] - rowMax);
      s0 = s0 + ((double)e[0] + (double)e[2]);
      s1 = s1 + ((double)e[1] + (double)e[3]);
    }
    double total = s0 + s1;
    for (; j < cols; j++) {
      const float e = expLane(h[j] - rowMax);
      dh[j] = e;
      total += (double)e;
    }
    const float inv = (float)(1 / total);
    for (j = 0; j < cols; j++) dh[j] = dh[j] * inv;
    dh[target] = dh[target] - 1.f;
    // As differences from the max: max + ln Σ − h[y] rounds ln Σ away when the logits are huge.
    lossSum += logF64(total) - ((double)logit - (double)rowMax);
  }
  return lossSum;
}

// dh = scale·(h − y); returns Σ (h − y)² in f64, lanes summed as the wasm module's.
static double squaredErrorGrad(float* dh, const float* h, const float* y, int len, float scale) {
  const int vecEnd = len & ~3;
  double s0 = 0, s1 = 0;
  int i = 0;
  for (; i < vecEnd; i += 4) {
    double d[4];
    for (int l = 0; l < 4; l++) {
      const float e = h[i + l] - y[i + l];
      dh[i + l] = e * scale;
      d[l] = (double)e;
    }
    s0 = s0 + (d[0] * d[0] + d[2] * d[2]);
    s1 = s1 + (d[1] * d[1] + d[3] * d[3]);
  }
  double total = s0 + s1;
  for (; i < len; i++) {
    const float e = h[i] - y[i];
    dh[i] = e * scale;
    total += (double)e * (double)e;
  }
  return total;
}

constexpr int SUM_BLOCK = 256;

// acc[0, w) = Σ slots[0 .. count) at [i0, i0 + w) by the step's fixed pairwise tree (core/pairwise.ts):
// the left subtree is the largest power of two below count; up to three slots that is the left fold.
static void pairwiseBlock(float* acc, const float* const* slots, int count, int i0, int w) {
  if (count <= 3) {
    const float* first = slots[0] + i0;
    for (int i = 0; i < w; i++) acc[i] = first[i];
    for (int s = 1; s < count; s++) {
      const float* g = slots[s] + i0;
      for (int i = 0; i < w; i++) acc[i] = acc[i] + g[i];
    }
    return;
  }
  int m = 1;
  while (m * 2 < count) m *= 2;
  float right[SUM_BLOCK];
  pairwiseBlock(acc, slots, m, i0, w);
  pairwiseBlock(right, slots + m, count - m, i0, w);
  for (int i = 0; i < w; i++) acc[i] = acc[i] + right[i];
}

// out = scale · Σ slots by the pairwise tree per element; blocks keep the sums in registers.
static void sumSlots(float* out, const float* const* slots, int count, int len, float scale) {
  constexpr int B = SUM_BLOCK;
  const bool scaled = scale != 1.f;
  for (int i0 = 0; i0 < len; i0 += B) {
    const int w = len - i0 < B ? len - i0 : B;
    float acc[B];
    pairwiseBlock(acc, slots, count, i0, w);
    float* o = out + i0;
    if (scaled) for (int i = 0; i < w; i++) o[i] = acc[i] * scale;
    else for (int i = 0; i < w; i++) o[i] = acc[i];
  }
}

static void sgd(float* paramsOut, float* bufOut, const float* params, const float* buf, const float* grad, int len,
                float lr, float momentum, float oneMinusDampening, bool nesterov, float weightDecay, bool firstStep) {
  const bool decay = weightDecay != 0.f;
  const bool hasMomentum = momentum != 0.f;
  if (hasMomentum && !decay && !nesterov && !firstStep) {
    for (int i = 0; i < len; i++) {
      const float b = momentum * buf[i] + oneMinusDampening * grad[i];
      const float p = params[i];
      bufOut[i] = b;
      paramsOut[i] = p - lr * b;
    }
    return;
  }
  for (int i = 0; i < len; i++) {
    const float p = params[i];
    float g = grad[i];
    if (decay) g = g + weightDecay * p;
    if (hasMomentum) {
      const float b = firstStep ? g : momentum * buf[i] + oneMinusDampening * g;
      bufOut[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    paramsOut[i] = p - lr * g;
  }
}

// The reduce and plain SGD-momentum in one pass: the mean gradient is never stored.
static void sumSgdMomentum(float* paramsOut, float* bufOut, const float* params, const float* buf, const float* const* slots,
                           int count, int len, float scale, float lr, float momentum, float oneMinusDampening) {
  constexpr int B = SUM_BLOCK;
  for (int i0 = 0; i0 < len; i0 += B) {
    const int w = len - i0 < B ? len - i0 : B;
    float g[B];
    pairwiseBlock(g, slots, count, i0, w);
    for (int i = 0; i < w; i++) {
      const float gi = g[i] * scale;
      const float b = momentum * buf[i0 + i] + oneMinusDampening * gi;
      const float p = params[i0 + i];
      bufOut[i0 + i] = b;
      paramsOut[i0 + i] = p - lr * b;
    }
  }
}

static void adam(float* paramsOut, float* mOut, float* vOut, const float* params, const float* m, const float* v, const float* grad,
                 int len, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float bc2Sqrt,
                 float eps, float weightDecay) {
  const bool decay = weightDecay != 0.f;
  for (int i = 0; i < len; i++) {
    const float p = params[i];
    float g = grad[i];
    if (decay) g = g + weightDecay * p;
    const float mi = beta1 * m[i] + oneMinusBeta1 * g;
    const float vi = beta2 * v[i] + (oneMinusBeta2 * g) * g;
    mOut[i] = mi;
    vOut[i] = vi;
    paramsOut[i] = p - (stepSize * mi) / (std::sqrt(vi) / bc2Sqrt + eps);
  }
}

static const Ops ops = {
    OPS_NAME, gemm, addBias, colSum, activate, activateBackward, crossEntropyGrad, squaredErrorGrad, sumSlots, sgd, sumSgdMomentum, adam,
};

}  // namespace GEMM_NS
