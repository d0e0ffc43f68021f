// The Node-API face of the native kernels: one object of functions per instruction-set path the
// CPU has (exports.avx2, exports.avx512), and exports.cpu saying which it has. Context-aware (one
// init per thread's environment, no per-module state), and it starts no threads. native.ts checks
// every length before a call; here each typed array is only checked to be a Float32Array.
#include <node_api.h>
#include <cstring>
#include <vector>
#include "ops.h"

using dptrain::Ops;

namespace {

struct Args {
  napi_env env;
  napi_value argv[17];
  size_t argc = 17;
  const Ops* ops = nullptr;
  bool failed = false;

  Args(napi_env e, napi_callback_info info) : env(e) {
    void* data = nullptr;
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) fail("bad call");
    ops = static_cast<const Ops*>(data);
  }
  void fail(const char* why) {
    if (!failed) napi_throw_type_error(env, nullptr, why);
    failed = true;
  }
  float* f32(size_t i, bool nullable = false) {
    if (failed) return nullptr;
    if (i >= argc) { fail("native kernels: missing argument"); return nullptr; }
    return f32Of(argv[i], nullable);
  }
  float* f32Of(napi_value value, bool nullable = false) {
    if (failed) return nullptr;
    napi_valuetype t;
    if (napi_typeof(env, value, &t) != napi_ok) { fail("native kernels: bad argument"); return nullptr; }
    if (t == napi_null && nullable) return nullptr;
    napi_typedarray_type type;
    size_t length;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
      fail("native kernels: expected a Float32Array");
      return nullptr;
    }
    return static_cast<float*>(data);
  }
  double num(size_t i) {
    double v = 0;
    if (!failed && (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok)) fail("native kernels: expected a number");
    return v;
  }
  int i32(size_t i) { return (int)num(i); }
  float f(size_t i) { return (float)num(i); }
  bool b(size_t i) { return num(i) != 0; }
  // Float32Arrays of an array, advanced to element `lo`.
  std::vector<const float*> slots(size_t i, int lo) {
    std::vector<const float*> out;
    uint32_t n = 0;
    if (failed || i >= argc || napi_get_array_length(env, argv[i], &n) != napi_ok || n == 0) { fail("native kernels: expected a non-empty array of slots"); return out; }
    for (uint32_t s = 0; s < n && !failed; s++) {
      napi_value v;
      napi_get_element(env, argv[i], s, &v);
      const float* p = f32Of(v);
      out.push_back(p ? p + lo : nullptr);
    }
    return out;
  }
  napi_value number(double v) {
    napi_value r;
    napi_create_double(env, v, &r);
    return r;
  }
};

// gemm(c, a, aByRows, b, bByCols, m, n, k, accumulate, scratch, bias|null, act, slope)
napi_value Gemm(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* c = x.f32(0);
  const float* a = x.f32(1);
  const bool aByRows = x.b(2);
  const float* b = x.f32(3);
  const bool bByCols = x.b(4);
  const int m = x.i32(5), n = x.i32(6), k = x.i32(7);
  const bool acc = x.b(8);
  float* scratch = x.f32(9);
  const float* bias = x.f32(10, true);
  const int act = x.i32(11);
  const float slope = x.f(12);
  if (!x.failed) x.ops->gemm(c, a, aByRows, b, bByCols, m, n, k, acc, scratch, bias, act, slope);
  return nullptr;
}

napi_value AddBias(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* z = x.f32(0);
  const float* bias = x.f32(1);
  const int rows = x.i32(2), cols = x.i32(3);
  if (!x.failed) x.ops->addBias(z, bias, rows, cols);
  return nullptr;
}

napi_value ColSum(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* d = x.f32(0);
  const float* dz = x.f32(1);
  const int rows = x.i32(2), cols = x.i32(3);
  if (!x.failed) x.ops->colSum(d, dz, rows, cols);
  return nullptr;
}

// activate(kind, h, z, len, slope) / activateBackward(kind, d, h, len, slope)
napi_value Activate(napi_env env, napi_callback_info info) {
  Args x(env, info);
  const int kind = x.i32(0);
  float* h = x.f32(1);
  const float* z = x.f32(2);
  const int len = x.i32(3);
  const float slope = x.f(4);
  if (!x.failed) x.ops->activate(kind, h, z, len, slope);
  return nullptr;
}

napi_value ActivateBackward(napi_env env, napi_callback_info info) {
  Args x(env, info);
  const int kind = x.i32(0);
  float* d = x.f32(1);
  const float* h = x.f32(2);
  const int len = x.i32(3);
  const float slope = x.f(4);
  if (!x.failed) x.ops->activateBackward(kind, d, h, len, slope);
  return nullptr;
}

napi_value CrossEntropyGrad(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* dh = x.f32(0);
  const float* h = x.f32(1);
  const float* y = x.f32(2);
  const int rows = x.i32(3), cols = x.i32(4);
  return x.failed ? nullptr : x.number(x.ops->crossEntropyGrad(dh, h, y, rows, cols));
}

napi_value SquaredErrorGrad(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* dh = x.f32(0);
  const float* h = x.f32(1);
  const float* y = x.f32(2);
  const int len = x.i32(3);
  const float scale = x.f(4);
  return x.failed ? nullptr : x.number(x.ops->squaredErrorGrad(dh, h, y, len, scale));
}

// sumSlots(out, slots[], lo, hi, scale)
napi_value SumSlots(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* out = x.f32(0);
  const int lo = x.i32(2), hi = x.i32(3);
  const auto slots = x.slots(1, lo);
  const float scale = x.f(4);
  if (!x.failed && hi > lo) x.ops->sumSlots(out + lo, slots.data(), (int)slots.size(), hi - lo, scale);
  return nullptr;
}

// sgd(paramsOut, bufOut, params, buf, grad, lo, hi, lr, momentum, oneMinusDampening, nesterov, weightDecay, firstStep)
napi_value Sgd(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* po = x.f32(0);
  float* bo = x.f32(1);
  const float* p = x.f32(2);
  const float* b = x.f32(3);
  const float* g = x.f32(4);
  const int lo = x.i32(5), hi = x.i32(6);
  const float lr = x.f(7), mom = x.f(8), damp = x.f(9);
  const bool nesterov = x.b(10);
  const float wd = x.f(11);
  const bool first = x.b(12);
  if (!x.failed && hi > lo) x.ops->sgd(po + lo, bo + lo, p + lo, b + lo, g + lo, hi - lo, lr, mom, damp, nesterov, wd, first);
  return nullptr;
}

// sumSgdMomentum(paramsOut, bufOut, params, buf, slots[], lo, hi, scale, lr, momentum, oneMinusDampening)
napi_value SumSgdMomentum(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* po = x.f32(0);
  float* bo = x.f32(1);
  const float* p = x.f32(2);
  const float* b = x.f32(3);
  const int lo = x.i32(5), hi = x.i32(6);
  const auto slots = x.slots(4, lo);
  const float scale = x.f(7), lr = x.f(8), mom = x.f(9), damp = x.f(10);
  if (!x.failed && hi > lo)
    x.ops->sumSgdMomentum(po + lo, bo + lo, p + lo, b + lo, slots.data(), (int)slots.size(), hi - lo, scale, lr, mom, damp);
  return nullptr;
}

// adam(paramsOut, mOut, vOut, params, m, v, grad, lo, hi, beta1, 1−beta1, beta2, 1−beta2, stepSize, bc2Sqrt, eps, weightDecay)
napi_value Adam(napi_env env, napi_callback_info info) {
  Args x(env, info);
  float* po = x.f32(0);
  float* mo = x.f32(1);
  float* vo = x.f32(2);
  const float* p = x.f32(3);
  const float* m = x.f32(4);
  const float* v = x.f32(5);
  const float* g = x.f32(6);
  const int lo = x.i32(7), hi = x.i32(8);
  const float b1 = x.f(9), c1 = x.f(10), b2 = x.f(11), c2 = x.f(12), step = x.f(13), bc2 = x.f(14), eps = x.f(15), wd = x.f(16);
  if (!x.failed && hi > lo)
    x.ops->adam(po + lo, mo + lo, vo + lo, p + lo, m + lo, v + lo, g + lo, hi - lo, b1, c1, b2, c2, step, bc2, eps, wd);
  return nullptr;
}

napi_value ScratchFloats(napi_env env, napi_callback_info info) {
  Args x(env, info);
  const int m = x.i32(0), n = x.i32(1);
  return x.failed ? nullptr : x.number(dptrain::scratchFloats(m, n));
}

void set(napi_env env, napi_value obj, const char* name, napi_callback fn, const Ops* ops) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, const_cast<Ops*>(ops), &f);
  napi_set_named_property(env, obj, name, f);
}

napi_value opsObject(napi_env env, const Ops* ops) {
  napi_value o;
  napi_create_object(env, &o);
  set(env, o, "gemm", Gemm, ops);
  set(env, o, "addBias", AddBias, ops);
  set(env, o, "colSum", ColSum, ops);
  set(env, o, "activate", Activate, ops);
  set(env, o, "activateBackward", ActivateBackward, ops);
  set(env, o, "crossEntropyGrad", CrossEntropyGrad, ops);
  set(env, o, "squaredErrorGrad", SquaredErrorGrad, ops);
  set(env, o, "sumSlots", SumSlots, ops);
  set(env, o, "sgd", Sgd, ops);
  set(env, o, "sumSgdMomentum", SumSgdMomentum, ops);
  set(env, o, "adam", Adam, ops);
  return o;
}

void setBool(napi_env env, napi_value obj, const char* name, bool v) {
  napi_value b;
  napi_get_boolean(env, v, &b);
  napi_set_named_property(env, obj, name, b);
}

}  // namespace

NAPI_MODULE_INIT() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  napi_value cpu;
  napi_create_object(env, &cpu);
  setBool(env, cpu, "avx2", avx2);
  setBool(env, cpu, "avx512", avx512);
  napi_set_named_property(env, exports, "cpu", cpu);
  // A path's functions exist only where the CPU can run them.
  if (avx2) napi_set_named_property(env, exports, "avx2", opsObject(env, dptrain::avx2Ops()));
  if (avx512) napi_set_named_property(env, exports, "avx512", opsObject(env, dptrain::avx512Ops()));
  napi_value sf;
  napi_create_function(env, "scratchFloats", NAPI_AUTO_LENGTH, ScratchFloats, nullptr, &sf);
  napi_set_named_property(env, exports, "scratchFloats", sf);
  return exports;
}
