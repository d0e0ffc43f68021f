// The native kernels' table of entry points: one instance per instruction-set path (isa_avx2.cc,
// isa_avx512.cc), chosen at run time by addon.cc. Pointers are float32 arrays, already range-checked.
#pragma once
#include <cstdint>

namespace dptrain {

// The GEMM epilogue's activations (the same codes as the wasm module's).
enum Act : int { ACT_NONE = 0, ACT_RELU = 1, ACT_LEAKY = 2 };
// Element-wise activation kinds (native.ts passes these codes).
enum Kind : int { K_IDENTITY = 0, K_RELU = 1, K_LEAKY = 2, K_SIGMOID = 3, K_TANH = 4 };

struct Ops {
  const char* name;
  // c[m×n] (+)= A·B; aByRows: A(i, p) = a[i·k + p] else a[p·m + i]; bByCols: B(p, j) = b[j·k + p] else b[p·n + j].
  void (*gemm)(float* c, const float* a, bool aByRows, const float* b, bool bByCols, int m, int n, int k, bool accumulate,
               float* scratch, const float* bias, int act, float slope);
  void (*addBias)(float* z, const float* bias, int rows, int cols);
  void (*colSum)(float* dBias, const float* dz, int rows, int cols);
  void (*activate)(int kind, float* h, const float* z, int len, float slope);
  void (*activateBackward)(int kind, float* d, const float* h, int len, float slope);
  double (*crossEntropyGrad)(float* dh, const float* h, const float* y, int rows, int cols);
  double (*squaredErrorGrad)(float* dh, const float* h, const float* y, int len, float scale);
  void (*sumSlots)(float* out, const float* const* slots, int count, int len, float scale);
  void (*sgd)(float* paramsOut, float* bufOut, const float* params, const float* buf, const float* grad, int len,
              float lr, float momentum, float oneMinusDampening, bool nesterov, float weightDecay, bool firstStep);
  void (*sumSgdMomentum)(float* paramsOut, float* bufOut, const float* params, const float* buf, const float* const* slots,
                         int count, int len, float scale, float lr, float momentum, float oneMinusDampening);
  void (*adam)(float* paramsOut, float* mOut, float* vOut, const float* params, const float* m, const float* v, const float* grad,
               int len, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float bc2Sqrt,
               float eps, float weightDecay);
};

const Ops* avx2Ops();
const Ops* avx512Ops();

// Blocking shared by both paths; native.ts mirrors it in nativeScratchFloats (checked at load).
constexpr int KC = 256;
constexpr int MC = 144;   // a multiple of both paths' MR (6, 8)
constexpr int NC = 512;   // a multiple of both paths' NR (16, 32)
constexpr int TILE_FLOATS = 8 * 32;
constexpr int ALIGN_FLOATS = 16;

inline int roundUp(int x, int r) { return (x + r - 1) / r * r; }
inline int scratchFloats(int maxM, int maxN) {
  return 2 * ALIGN_FLOATS + TILE_FLOATS + KC * ((maxM < MC ? roundUp(maxM, 8) + 8 : MC) + (maxN < NC ? roundUp(maxN, 32) : NC));
}

}  // namespace dptrain
