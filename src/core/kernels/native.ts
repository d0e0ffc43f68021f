// The native backend: the Node-API addon built from native/*.cc (dist/native/dptrain_kernels.node),
// loaded once per thread, with one path per instruction set (avx2: AVX2 + FMA, avx512: AVX-512F).
// Views go to it as Float32Arrays (any buffer, the arena's SharedArrayBuffer included); lengths are
// checked here. Only the mae and bce loss gradients stay in TypeScript, as in the wasm backend.

import { createRequire } from 'node:module';
import { LEAKY_SLOPE } from '../activations.js';
import { builtFile } from '../io/package-files.js';
import { lossGradVia, type LossKernels } from './loss-grad.js';
import type { Activation, LossName } from '../spec.js';
import { plainMomentum, type AdamParams, type F32, type Kernels, type SgdParams } from './types.js';

export type NativeIsa = 'avx2' | 'avx512';
export const NATIVE_ISAS: readonly NativeIsa[] = ['avx512', 'avx2'];
export type NativeStatus = { readonly ok: true; readonly isa: NativeIsa } | { readonly ok: false; readonly why: string };

// Mirrors the blocking of native/ops.h (checked against the addon's scratchFloats at load).
const KC = 256;
const MC = 144;
const NC = 512;
const TILE_FLOATS = 8 * 32;
const ALIGN_FLOATS = 16;
const roundUp = (x: number, r: number): number => Math.ceil(x / r) * r;

/** Floats of per-thread scratch the native GEMMs (either path) need for products with m ≤ maxM, n ≤ maxN. */
export function nativeScratchFloats(maxM: number, maxN: number): number {
  return 2 * ALIGN_FLOATS + TILE_FLOATS + KC * ((maxM < MC ? roundUp(maxM, 8) + 8 : MC) + (maxN < NC ? roundUp(maxN, 32) : NC));
}

/** One path's functions (addon.cc); booleans travel as 0/1, bias null for none. */
interface NativeOps {
  gemm(c: F32, a: F32, aByRows: number, b: F32, bByCols: number, m: number, n: number, k: number, accumulate: number, scratch: F32, bias: F32 | null, act: number, slope: number): void;
  addBias(z: F32, bias: F32, rows: number, cols: number): void;
  colSum(dBias: F32, dz: F32, rows: number, cols: number): void;
  activate(kind: number, h: F32, z: F32, len: number, slope: number): void;
  activateBackward(kind: number, d: F32, h: F32, len: number, slope: number): void;
  crossEntropyGrad(dh: F32, h: F32, y: F32, rows: number, cols: number): number;
  squaredErrorGrad(dh: F32, h: F32, y: F32, len: number, scale: number): number;
  sumSlots(out: F32, slots: readonly F32[], lo: number, hi: number, scale: number): void;
  sgd(paramsOut: F32, bufOut: F32, params: F32, buf: F32, grad: F32, lo: number, hi: number, lr: number, momentum: number, oneMinusDampening: number, nesterov: number, weightDecay: number, firstStep: number): void;
  sumSgdMomentum(paramsOut: F32, bufOut: F32, params: F32, buf: F32, slots: readonly F32[], lo: number, hi: number, scale: number, lr: number, momentum: number, oneMinusDampening: number): void;
  adam(paramsOut: F32, mOut: F32, vOut: F32, params: F32, m: F32, v: F32, grad: F32, lo: number, hi: number, beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number, stepSize: number, bc2Sqrt: number, eps: number, weightDecay: number): void;
}

interface NativeAddon {
  readonly cpu: { readonly avx2: boolean; readonly avx512: boolean };
  readonly avx2?: NativeOps;
  readonly avx512?: NativeOps;
  scratchFloats(maxM: number, maxN: number): number;
}

/** Where the addon is: DPTRAIN_NATIVE_PATH if set (tests point it at nothing to simulate a failed build), else dist/native/. */
export function nativeAddonPath(): string | null {
  return process.env.DPTRAIN_NATIVE_PATH ?? builtFile('native/dptrain_kernels.node');
}

let cached: { addon: NativeAddon } | { why: string } | undefined;

function loadAddon(): { addon: NativeAddon } | { why: string } {
  if (cached) return cached;
  const path = nativeAddonPath();
  if (process.arch !== 'x64') cached = { why: `native kernels are x86-64 only (this is ${process.arch})` };
  else if (!path) cached = { why: 'dist/native/dptrain_kernels.node was not built (no C++ compiler at install, or the compile failed)' };
  else {
    try {
      const addon = createRequire(import.meta.url)(path) as NativeAddon;
      cached = addon.scratchFloats(1000, 1000) === nativeScratchFloats(1000, 1000)
        ? { addon }
        : { why: `${path} is out of date with native.ts; rebuild it with npm run build` };
    } catch (e) {
      cached = { why: `cannot load ${path}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
    }
  }
  return cached;
}

/** Whether the CPU has this path and the addon is built (for tests: which paths can run here). */
export function nativeIsaSupported(isa: NativeIsa): boolean {
  const loaded = loadAddon();
  return 'addon' in loaded && loaded.addon.cpu[isa] && loaded.addon[isa] !== undefined;
}

/**
 * The path the native backend runs here: `isa` if given, else DPTRAIN_NATIVE_ISA (avx2 forces the
 * lower path, avx512 asks for the higher one), else the best the CPU has; or why there is none.
 */
export function nativeKernelsAvailable(isa?: NativeIsa): NativeStatus {
  const loaded = loadAddon();
  if (!('addon' in loaded)) return { ok: false, why: loaded.why };
  const forced = isa ?? process.env.DPTRAIN_NATIVE_ISA;
  if (forced !== undefined && forced !== '' && forced !== 'avx2' && forced !== 'avx512')
    return { ok: false, why: `DPTRAIN_NATIVE_ISA must be avx2 or avx512, got ${forced}` };
  const { cpu } = loaded.addon;
  if (!cpu.avx2) return { ok: false, why: 'this CPU has no AVX2 + FMA' };
  if (forced === 'avx512' && !cpu.avx512) return { ok: false, why: 'this CPU has no AVX-512F (asked for by DPTRAIN_NATIVE_ISA=avx512)' };
  return { ok: true, isa: forced === 'avx2' || forced === 'avx512' ? forced : cpu.avx512 ? 'avx512' : 'avx2' };
}

const KIND: Record<Activation, number> = { identity: 0, relu: 1, 'leaky-relu': 2, sigmoid: 3, tanh: 4 };
/** The activations the GEMM epilogue applies itself (codes of native/ops.h). */
const EPILOGUE: Partial<Record<Activation, number>> = { identity: 0, relu: 1, 'leaky-relu': 2 };

/**
 * The native backend on path `isa` (default: nativeKernelsAvailable's choice). `memory` is the
 * arena (unused: the addon takes any Float32Array); `scratch` is this thread's packing scratch (at
 * least nativeScratchFloats of the largest product).
 */
export function createNativeKernels(_memory: WebAssembly.Memory | null, scratch: F32, isa?: NativeIsa): Kernels {
  const status = nativeKernelsAvailable(isa);
  if (!status.ok) throw new Error(`native kernels: unavailable: ${status.why}`);
  const ops = (loadAddon() as { addon: NativeAddon }).addon[status.isa]!;

  const at = (v: F32, floats: number, what: string): F32 => {
    if (!(v instanceof Float32Array)) throw new TypeError(`native kernels: ${what} is not a Float32Array`);
    if (v.length < floats) throw new RangeError(`native kernels: ${what} holds ${v.length} floats, ${floats} needed`);
    return v;
  };
  const needScratch = (m: number, n: number): F32 => {
    const need = nativeScratchFloats(m, n);
    if (scratch.length < need) throw new RangeError(`native kernels: scratch holds ${scratch.length} floats, a ${m}×${n} product needs ${need}`);
    return scratch;
  };
  const slotsAt = (slots: readonly F32[], hi: number): readonly F32[] => {
    if (slots.length === 0) throw new RangeError('native kernels: summing slots needs at least one slot');
    slots.forEach((s, i) => at(s, hi, `slots[${i}]`));
    return slots;
  };

  const lossKernels: LossKernels = {
    crossEntropy: (dh, h, y, rows, cols) => ops.crossEntropyGrad(at(dh, rows * cols, 'dh'), at(h, rows * cols, 'h'), at(y, rows, 'y'), rows, cols),
    squaredError: (dh, h, y, len, scale) => ops.squaredErrorGrad(at(dh, len, 'dh'), at(h, len, 'h'), at(y, len, 'y'), len, scale),
  };

  return {
    name: `native-${status.isa}`,

    gemmNT(c, a, b, m, n, k, accumulate) {
      ops.gemm(at(c, m * n, 'c'), at(a, m * k, 'a'), 1, at(b, n * k, 'b'), 1, m, n, k, accumulate ? 1 : 0, needScratch(m, n), null, 0, 0);
    },
    gemmTN(c, a, b, m, n, k, accumulate) {
      ops.gemm(at(c, m * n, 'c'), at(a, k * m, 'a'), 0, at(b, k * n, 'b'), 0, m, n, k, accumulate ? 1 : 0, needScratch(m, n), null, 0, 0);
    },
    gemmNN(c, a, b, m, n, k, accumulate) {
      ops.gemm(at(c, m * n, 'c'), at(a, m * k, 'a'), 1, at(b, k * n, 'b'), 0, m, n, k, accumulate ? 1 : 0, needScratch(m, n), null, 0, 0);
    },

    linear(h, z, inp, w, b, act: Activation, rows, nIn, nOut) {
      const len = rows * nOut;
      const bias = b ? at(b, nOut, 'b') : null;
      const fused = EPILOGUE[act];
      // Bias and relu-like activations ride in the GEMM's last store; exp-based ones take a pass.
      const out = fused !== undefined ? at(h, len, 'h') : at(z, len, 'z');
      ops.gemm(out, at(inp, rows * nIn, 'inp'), 1, at(w, nOut * nIn, 'w'), 1, rows, nOut, nIn, 0, needScratch(rows, nOut), bias, fused ?? 0, LEAKY_SLOPE);
      if (fused === undefined) this.activate(act, h, z, len);
    },

    addBias(z, bias, rows, cols) {
      ops.addBias(at(z, rows * cols, 'z'), at(bias, cols, 'bias'), rows, cols);
    },
    colSum(dBias, dz, rows, cols) {
      ops.colSum(at(dBias, cols, 'dBias'), at(dz, rows * cols, 'dz'), rows, cols);
    },
    activate(kind: Activation, h, z, len) {
      ops.activate(KIND[kind], at(h, len, 'h'), at(z, len, 'z'), len, LEAKY_SLOPE);
    },
    activateBackward(kind: Activation, d, h, len) {
      if (kind !== 'identity') ops.activateBackward(KIND[kind], at(d, len, 'd'), at(h, len, 'h'), len, LEAKY_SLOPE);
    },

    lossGrad(loss: LossName, dh, h, y, rows, cols) {
      return lossGradVia(lossKernels, loss, dh, h, y, rows, cols);
    },

    sumSlots(out, slots, lo, hi, scale) {
      if (hi <= lo) return;
      ops.sumSlots(at(out, hi, 'out'), slotsAt(slots, hi), lo, hi, scale);
    },

    sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p: SgdParams) {
      if (hi <= lo) return;
      ops.sgd(
        at(paramsOut, hi, 'paramsOut'), at(bufOut, hi, 'momentum buffer out'), at(params, hi, 'params'), at(buf, hi, 'momentum buffer'), at(grad, hi, 'grad'),
        lo, hi, p.lr, p.momentum, 1 - p.dampening, p.nesterov ? 1 : 0, p.weightDecay, p.firstStep ? 1 : 0,
      );
    },

    sumSgd(paramsOut, bufOut, params, buf, grad, slots, scale, lo, hi, p: SgdParams) {
      if (!plainMomentum(p)) {
        this.sumSlots(grad, slots, lo, hi, scale);
        this.sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p);
        return;
      }
      if (hi <= lo) return;
      ops.sumSgdMomentum(
        at(paramsOut, hi, 'paramsOut'), at(bufOut, hi, 'momentum buffer out'), at(params, hi, 'params'), at(buf, hi, 'momentum buffer'),
        slotsAt(slots, hi), lo, hi, scale, p.lr, p.momentum, 1 - p.dampening,
      );
    },

    adam(paramsOut, mOut, vOut, params, m, v, grad, lo, hi, p: AdamParams) {
      if (hi <= lo) return;
      ops.adam(
        at(paramsOut, hi, 'paramsOut'), at(mOut, hi, 'mOut'), at(vOut, hi, 'vOut'), at(params, hi, 'params'), at(m, hi, 'm'), at(v, hi, 'v'), at(grad, hi, 'grad'),
        lo, hi, p.beta1, 1 - p.beta1, p.beta2, 1 - p.beta2, p.stepSize, p.bc2Sqrt, p.eps, p.weightDecay,
      );
    },
  };
}
