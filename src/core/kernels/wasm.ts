// The WebAssembly SIMD backend: loads the AssemblyScript module (dist/wasm/kernels.wasm, built by
// `npm run build:wasm`), instantiates it over the arena's shared memory and passes every view as a
// byte offset, so the kernels work in place. Only the mae and bce loss gradients stay in TypeScript.

import { readFileSync } from 'node:fs';
import { LEAKY_SLOPE } from '../activations.js';
import { builtFile } from '../io/package-files.js';
import { lossGradVia, type LossKernels } from './loss-grad.js';
import type { Activation, LossName } from '../spec.js';
import { plainMomentum, type AdamParams, type F32, type Kernels, type SgdParams } from './types.js';

// Mirrors the blocking constants of assembly/gemm.ts (checked against its scratchFloats export).
const MR = 4;
const NR = 8;
const KC = 512;
const MC = 128;
const NC = 256;

const roundUp = (x: number, r: number): number => Math.ceil(x / r) * r;

/** Floats of per-thread scratch the wasm GEMMs need for products with m ≤ maxM, n ≤ maxN. */
export function wasmScratchFloats(maxM: number, maxN: number): number {
  return 4 + MR * NR + KC * (Math.min(MC, roundUp(maxM, MR)) + Math.min(NC, roundUp(maxN, NR)));
}

/** The module's exports: pointers are byte offsets, booleans 0/1. */
interface KernelExports {
  gemmNT(c: number, a: number, b: number, m: number, n: number, k: number, accumulate: number, scratch: number): void;
  gemmTN(c: number, a: number, b: number, m: number, n: number, k: number, accumulate: number, scratch: number): void;
  gemmNN(c: number, a: number, b: number, m: number, n: number, k: number, accumulate: number, scratch: number): void;
  linearForward(h: number, a: number, w: number, bias: number, m: number, n: number, k: number, act: number, slope: number, scratch: number): void;
  scratchFloats(maxM: number, maxN: number): number;
  addBias(z: number, bias: number, rows: number, cols: number): void;
  colSum(dBias: number, dz: number, rows: number, cols: number): void;
  relu(h: number, z: number, len: number): void;
  reluBackward(d: number, h: number, len: number): void;
  leakyRelu(h: number, z: number, len: number, slope: number): void;
  leakyReluBackward(d: number, h: number, len: number, slope: number): void;
  sigmoid(h: number, z: number, len: number): void;
  sigmoidBackward(d: number, h: number, len: number): void;
  tanh(h: number, z: number, len: number): void;
  tanhBackward(d: number, h: number, len: number): void;
  crossEntropyGrad(dh: number, h: number, y: number, rows: number, cols: number): number;
  squaredErrorGrad(dh: number, h: number, y: number, len: number, scale: number): number;
  copy(dst: number, src: number, len: number): void;
  sumSlots(out: number, slotTable: number, count: number, len: number, scale: number): void;
  sgd(
    paramsOut: number, bufOut: number, params: number, buf: number, grad: number, len: number,
    lr: number, momentum: number, oneMinusDampening: number, nesterov: number, weightDecay: number, firstStep: number,
  ): void;
  sumSgdMomentum(
    paramsOut: number, bufOut: number, params: number, buf: number, slotTable: number, count: number, len: number,
    scale: number, lr: number, momentum: number, oneMinusDampening: number,
  ): void;
  adam(
    paramsOut: number, mOut: number, vOut: number, params: number, m: number, v: number, grad: number, len: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number,
    stepSize: number, bc2Sqrt: number, eps: number, weightDecay: number,
  ): void;
}

/** The activations the GEMM epilogue applies itself (codes of assembly/gemm.ts). */
const EPILOGUE: Partial<Record<Activation, number>> & { identity: number } = { identity: 0, relu: 1, 'leaky-relu': 2 };

const EXPORT_NAMES: readonly (keyof KernelExports)[] = [
  'gemmNT', 'gemmTN', 'gemmNN', 'linearForward', 'scratchFloats', 'addBias', 'colSum', 'relu', 'reluBackward', 'leakyRelu',
  'leakyReluBackward', 'sigmoid', 'sigmoidBackward', 'tanh', 'tanhBackward', 'crossEntropyGrad', 'squaredErrorGrad',
  'copy', 'sumSlots', 'sgd', 'sumSgdMomentum', 'adam',
];

// A minimal module whose one function uses v128 (i8x16.splat, i8x16.popcnt): it validates only
// where WebAssembly SIMD is implemented.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** Where the compiled module lives (dist/wasm/), or null before a build. */
export function wasmModulePath(): string | null {
  return builtFile('wasm/kernels.wasm');
}

let cachedModule: WebAssembly.Module | null | undefined;

/** The compiled kernel module (once per thread), or null when the file is missing or SIMD is not supported. */
export function loadWasmModule(): WebAssembly.Module | null {
  if (cachedModule !== undefined) return cachedModule;
  cachedModule = null;
  const path = wasmModulePath();
  if (path && wasmSimdSupported()) {
    try {
      cachedModule = new WebAssembly.Module(readFileSync(path));
    } catch {
      cachedModule = null;
    }
  }
  return cachedModule;
}

function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const abort = (): never => {
    throw new Error('wasm kernels: abort');
  };
  let exports: WebAssembly.Exports;
  try {
    ({ exports } = new WebAssembly.Instance(module, { env: { memory, abort } }));
  } catch (e) {
    // The module imports a shared memory of at most 65536 pages; anything else fails to link.
    const why = e instanceof Error ? e.message : String(e);
    throw new TypeError(`wasm kernels: the memory must be a shared WebAssembly.Memory (shared: true, initial = maximum ≤ 65536 pages): ${why}`);
  }
  for (const name of EXPORT_NAMES)
    if (typeof exports[name] !== 'function') throw new Error(`wasm kernels: the module does not export ${name}; rebuild it with npm run build:wasm`);
  return exports as unknown as KernelExports;
}

/**
 * The wasm backend over `memory` (a shared WebAssembly.Memory whose size never changes, as the
 * arena's). Every view passed to it must lie in memory.buffer; `scratch` is this thread's packing
 * scratch (at least wasmScratchFloats of the largest product).
 */
export function createWasmKernels(memory: WebAssembly.Memory, scratch: F32): Kernels {
  const module = loadWasmModule();
  if (!module) throw new Error('wasm kernels: unavailable (WebAssembly SIMD unsupported, or dist/wasm/kernels.wasm missing: run npm run build:wasm)');
  const wasm = instantiate(module, memory);
  if (wasm.scratchFloats(1000, 1000) !== wasmScratchFloats(1000, 1000))
    throw new Error('wasm kernels: dist/wasm/kernels.wasm is out of date with wasm.ts; rebuild it with npm run build:wasm');
  const buffer = memory.buffer;

  /** The byte offset of the first `floats` elements of v, after checking they lie in the memory. */
  const at = (v: F32, floats: number, what: string): number => {
    if (v.buffer !== buffer) throw new TypeError(`wasm kernels: ${what} is not a view on the kernels' WebAssembly.Memory`);
    if (v.length < floats) throw new RangeError(`wasm kernels: ${what} holds ${v.length} floats, ${floats} needed`);
    return v.byteOffset;
  };
  const scratchAt = at(scratch, 0, 'scratch');
  // The slot table of sumSlots: u32 byte offsets written into the scratch (free between calls).
  const slotTable = new Uint32Array(buffer, scratchAt, scratch.length);

  /** Writes the slots' byte offsets at `lo` into the slot table; returns the table's offset. */
  const fillSlotTable = (slots: readonly F32[], lo: number, hi: number): number => {
    const count = slots.length;
    if (count === 0) throw new RangeError('wasm kernels: summing slots needs at least one slot');
    if (count > slotTable.length) throw new RangeError(`wasm kernels: ${count} slots do not fit the scratch's slot table`);
    for (let s = 0; s < count; s++) slotTable[s] = at(slots[s], hi, `slots[${s}]`) + lo * 4;
    return scratchAt;
  };

  const needScratch = (m: number, n: number): number => {
    const need = wasmScratchFloats(m, n);
    if (scratch.length < need) throw new RangeError(`wasm kernels: scratch holds ${scratch.length} floats, a ${m}×${n} product needs ${need}`);
    return scratchAt;
  };

  const lossKernels: LossKernels = {
    crossEntropy: (dh, h, y, rows, cols) => wasm.crossEntropyGrad(at(dh, rows * cols, 'dh'), at(h, rows * cols, 'h'), at(y, rows, 'y'), rows, cols),
    squaredError: (dh, h, y, len, scale) => wasm.squaredErrorGrad(at(dh, len, 'dh'), at(h, len, 'h'), at(y, len, 'y'), len, scale),
  };

  return {
    name: 'wasm',

    gemmNT(c, a, b, m, n, k, accumulate) {
      wasm.gemmNT(at(c, m * n, 'c'), at(a, m * k, 'a'), at(b, n * k, 'b'), m, n, k, accumulate ? 1 : 0, needScratch(m, n));
    },
    gemmTN(c, a, b, m, n, k, accumulate) {
      wasm.gemmTN(at(c, m * n, 'c'), at(a, k * m, 'a'), at(b, k * n, 'b'), m, n, k, accumulate ? 1 : 0, needScratch(m, n));
    },
    gemmNN(c, a, b, m, n, k, accumulate) {
      wasm.gemmNN(at(c, m * n, 'c'), at(a, m * k, 'a'), at(b, k * n, 'b'), m, n, k, accumulate ? 1 : 0, needScratch(m, n));
    },

    linear(h, z, inp, w, b, act: Activation, rows, nIn, nOut) {
      const len = rows * nOut;
      const bias = b ? at(b, nOut, 'b') : 0;
      const args = [at(inp, rows * nIn, 'inp'), at(w, nOut * nIn, 'w'), bias, rows, nOut, nIn] as const;
      const fused = EPILOGUE[act];
      // Bias and relu-like activations ride in the GEMM's last store; exp-based ones take a pass.
      if (fused !== undefined) return wasm.linearForward(at(h, len, 'h'), ...args, fused, LEAKY_SLOPE, needScratch(rows, nOut));
      wasm.linearForward(at(z, len, 'z'), ...args, EPILOGUE.identity, 0, needScratch(rows, nOut));
      this.activate(act, h, z, len);
    },

    addBias(z, bias, rows, cols) {
      wasm.addBias(at(z, rows * cols, 'z'), at(bias, cols, 'bias'), rows, cols);
    },
    colSum(dBias, dz, rows, cols) {
      wasm.colSum(at(dBias, cols, 'dBias'), at(dz, rows * cols, 'dz'), rows, cols);
    },

    activate(kind: Activation, h, z, len) {
      switch (kind) {
        case 'identity': {
          const hp = at(h, len, 'h');
          const zp = at(z, len, 'z');
          if (hp !== zp) wasm.copy(hp, zp, len);
          return;
        }
        case 'relu':
          return wasm.relu(at(h, len, 'h'), at(z, len, 'z'), len);
        case 'leaky-relu':
          return wasm.leakyRelu(at(h, len, 'h'), at(z, len, 'z'), len, LEAKY_SLOPE);
        case 'sigmoid':
          return wasm.sigmoid(at(h, len, 'h'), at(z, len, 'z'), len);
        case 'tanh':
          return wasm.tanh(at(h, len, 'h'), at(z, len, 'z'), len);
      }
    },

    activateBackward(kind: Activation, d, h, len) {
      switch (kind) {
        case 'identity':
          return;
        // The kernels test their argument > 0: h > 0 exactly where z > 0.
        case 'relu':
          return wasm.reluBackward(at(d, len, 'd'), at(h, len, 'h'), len);
        case 'leaky-relu':
          return wasm.leakyReluBackward(at(d, len, 'd'), at(h, len, 'h'), len, LEAKY_SLOPE);
        case 'sigmoid':
          return wasm.sigmoidBackward(at(d, len, 'd'), at(h, len, 'h'), len);
        case 'tanh':
          return wasm.tanhBackward(at(d, len, 'd'), at(h, len, 'h'), len);
      }
    },

    lossGrad(loss: LossName, dh, h, y, rows, cols) {
      return lossGradVia(lossKernels, loss, dh, h, y, rows, cols);
    },

    sumSlots(out, slots, lo, hi, scale) {
      if (hi <= lo) return;
      wasm.sumSlots(at(out, hi, 'out') + lo * 4, fillSlotTable(slots, lo, hi), slots.length, hi - lo, scale);
    },

    sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p: SgdParams) {
      if (hi <= lo) return;
      const off = lo * 4;
      // The buffers are untouched without momentum (optim.ts then passes the gradient in their place).
      wasm.sgd(
        at(paramsOut, hi, 'paramsOut') + off, at(bufOut, hi, 'momentum buffer out') + off,
        at(params, hi, 'params') + off, at(buf, hi, 'momentum buffer') + off, at(grad, hi, 'grad') + off, hi - lo,
        p.lr, p.momentum, 1 - p.dampening, p.nesterov ? 1 : 0, p.weightDecay, p.firstStep ? 1 : 0,
      );
    },

    sumSgd(paramsOut, bufOut, params, buf, grad, slots, scale, lo, hi, p: SgdParams) {
      if (!plainMomentum(p)) {
        this.sumSlots(grad, slots, lo, hi, scale);
        this.sgd(paramsOut, bufOut, params, buf, grad, lo, hi, p);
        return;
      }
      if (hi <= lo) return;
      const off = lo * 4;
      wasm.sumSgdMomentum(
        at(paramsOut, hi, 'paramsOut') + off, at(bufOut, hi, 'momentum buffer out') + off,
        at(params, hi, 'params') + off, at(buf, hi, 'momentum buffer') + off, fillSlotTable(slots, lo, hi), slots.length, hi - lo,
        scale, p.lr, p.momentum, 1 - p.dampening,
      );
    },

    adam(paramsOut, mOut, vOut, params, m, v, grad, lo, hi, p: AdamParams) {
      if (hi <= lo) return;
      const off = lo * 4;
      wasm.adam(
        at(paramsOut, hi, 'paramsOut') + off, at(mOut, hi, 'mOut') + off, at(vOut, hi, 'vOut') + off,
        at(params, hi, 'params') + off, at(m, hi, 'm') + off, at(v, hi, 'v') + off, at(grad, hi, 'grad') + off, hi - lo,
        p.beta1, 1 - p.beta1, p.beta2, 1 - p.beta2, p.stepSize, p.bc2Sqrt, p.eps, p.weightDecay,
      );
    },
  };
}
