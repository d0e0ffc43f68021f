// The fast kernels against the oracle (naive GEMMs, TypeScript element-wise loops) on seeded random
// shapes and misaligned views of a shared memory. Needs dist/wasm/kernels.wasm (npm run build:wasm).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { activations } from '../src/core/activations.js';
import { createArena } from '../src/core/arena.js';
import { initParams } from '../src/core/init.js';
import { tsElementwise } from '../src/core/kernels/elementwise.js';
import { createKernels } from '../src/core/kernels/index.js';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { createTsKernels, tsScratchFloats } from '../src/core/kernels/ts.js';
import { adamParams } from '../src/core/optim.js';
import type { F32, Kernels, SgdParams } from '../src/core/kernels/types.js';
import { createWasmKernels, loadWasmModule, wasmModulePath, wasmScratchFloats, wasmSimdSupported } from '../src/core/kernels/wasm.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients, type Model } from '../src/core/model.js';
import { Rng } from '../src/core/rng.js';
import { leftLeaves, pairwiseSum } from '../src/core/pairwise.js';
import { ACTIVATIONS, isClassIndexLoss, LOSSES, type Activation } from '../src/core/spec.js';
import { randomData, sameBits, spec } from './helpers.js';
import { fillRandom, gemmCase, LAYOUTS, testArena, type Layout } from './kernel-oracle.js';

// ---- a shared arena of our own, with a bump allocator that can misalign views ---------------

// 32 MiB: the reference shapes' operands, twice over.
const arena = testArena(512);
const { memory, alloc, scoped } = arena;

const MAX_DIM = 1024;
const scratchFloats = Math.max(wasmScratchFloats(MAX_DIM, MAX_DIM), tsScratchFloats(MAX_DIM, MAX_DIM));
const wasmScratch = alloc(scratchFloats, 1);
const tsKernels = createTsKernels(new Float32Array(scratchFloats));
// Without the module every "wasm equals the oracle" case below would compare nothing: fail the file.
const wasmReady = loadWasmModule() !== null;
if (!wasmReady) throw new Error(`the wasm kernels do not load (module ${wasmModulePath() ?? 'dist/wasm/kernels.wasm missing'}, SIMD ${wasmSimdSupported() ? 'supported' : 'unsupported'}): run npm run build:wasm`);
const wasm: Kernels = createWasmKernels(memory, wasmScratch);

// Edge shapes (1, odd, 10-wide, across the 4×8 tile and the 128 M, 512 K and 256 N blocks) and the reference shapes.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 9, 1], [7, 1, 3], [3, 5, 1], [4, 8, 16], [5, 9, 17], [10, 10, 10], [3, 10, 7],
  [128, 10, 512], [10, 512, 128], [33, 17, 257], [9, 300, 5], [13, 517, 300], [64, 64, 784], [131, 33, 20], [300, 9, 5], [5, 9, 1100],
];
const REFERENCE: Record<Layout, [number, number, number][]> = {
  gemmNT: [[128, 512, 784], [128, 10, 512]],
  gemmTN: [[512, 784, 128], [10, 512, 128]],
  gemmNN: [[128, 784, 512], [128, 512, 10]],
};

describe('the wasm module', () => {
  it('is built and loads (npm run build:wasm)', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(wasmModulePath(), 'dist/wasm/kernels.wasm is missing: run npm run build:wasm').not.toBeNull();
    expect(wasmReady).toBe(true);
  });

  it('has no data segment, imports only env.memory (shared) and exports only functions', () => {
    const bytes = readFileSync(wasmModulePath() ?? '');
    const sections: number[] = [];
    let at = 8;
    const leb = (): number => {
      let v = 0;
      for (let shift = 0; ; shift += 7) {
        const byte = bytes[at++];
        v += (byte & 0x7f) * 2 ** shift;
        if (byte < 0x80) return v;
      }
    };
    while (at < bytes.length) {
      const id = bytes[at++];
      const size = leb();
      sections.push(id);
      at += size;
    }
    expect(sections).not.toContain(11); // data
    expect(sections).not.toContain(12); // data count
    const mod = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(mod).filter((i) => i.kind !== 'function')).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const { exports } = new WebAssembly.Instance(mod, { env: { memory, abort: () => {} } });
    for (const [name, value] of Object.entries(exports)) expect(typeof value, name).toBe('function');
  });

  it('refuses views outside its memory, with a clear message', () => {
    const outside = new Float32Array(16);
    expect(() => wasm.addBias(outside, outside, 4, 4)).toThrow(/not a view on the kernels' WebAssembly\.Memory/);
    expect(() => createWasmKernels(memory, new Float32Array(64))).toThrow(/scratch is not a view/);
    const unshared = new WebAssembly.Memory({ initial: 2, maximum: 2 });
    expect(() => createWasmKernels(unshared, new Float32Array(unshared.buffer, 65536, 64))).toThrow(/must be a shared WebAssembly\.Memory/);
  });

  it('is what createKernels picks for wasm (auto: native first when built), and ts for ts', () => {
    expect(createKernels('auto', memory, wasmScratch).name).toMatch(/^(wasm|native-avx2|native-avx512)$/);
    expect(createKernels('wasm', memory, wasmScratch).name).toBe('wasm');
    expect(createKernels('ts', memory, wasmScratch).name).toBe('ts');
  });
});

describe('GEMMs equal the naive oracle', () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: edge shapes, accumulate false and true, misaligned views`, () => {
      let seed = 1;
      for (const [m, n, k] of SHAPES)
        for (const acc of [false, true]) gemmCase(arena, layout, m, n, k, acc, seed++, [tsKernels, wasm]);
    });

    it(`${layout}: seeded random shapes`, () => {
      const rng = new Rng(100 + LAYOUTS.indexOf(layout));
      for (let t = 0; t < 40; t++) {
        const dim = (): number => 1 + rng.int(rng.next() < 0.5 ? 12 : 90);
        gemmCase(arena, layout, dim(), dim(), dim(), rng.next() < 0.5, 1000 + t, [tsKernels, wasm]);
      }
    });

    it(`${layout}: the reference shapes`, () => {
      let seed = 50;
      for (const [m, n, k] of REFERENCE[layout])
        for (const acc of [false, true]) gemmCase(arena, layout, m, n, k, acc, seed++, [tsKernels, wasm]);
    });
  }
});

// ---- element-wise ----------------------------------------------------------------------------

/** got ≈ want element-wise: |got − want| ≤ rel·|want| + abs, NaN where want is NaN. */
function expectClose(got: F32, want: F32, rel: number, abs: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i]) ? Number.isNaN(got[i]) : Math.abs(got[i] - want[i]) <= rel * Math.abs(want[i]) + abs;
    if (!ok) throw new Error(`${what}: element ${i} is ${got[i]}, TypeScript says ${want[i]}`);
  }
}

/** Random values with a few specials (±0, NaN, ±large) sprinkled in. */
function activationInput(len: number, rng: Rng, skew: number): F32 {
  const v = fillRandom(alloc(len, skew), rng, -3, 3);
  const specials = [0, -0, Number.NaN, 1e30, -1e30];
  for (let s = 0; s < specials.length && s < len; s++) v[rng.int(len)] = specials[s];
  return v;
}

// The TypeScript sigmoid and tanh round a float64 result once (≤ ½ ulp); the wasm ones, built on an
// f32x4 exp, stay within 2.5 ulp of exact. So the two are < 3 ulp apart: EXP_REL·|want| is ≥ 4 ulp,
// and EXP_ABS is 4 denormal ulps, for sigmoid(−100) ≈ 3.8e−44.
const EXP_REL = 4 * 2 ** -23;
const EXP_ABS = 2 ** -147;

describe('element-wise kernels equal the TypeScript ones', () => {
  const SIZES: [number, number][] = [[1, 1], [1, 3], [7, 10], [3, 513], [128, 512], [5, 17]];

  it('addBias and colSum (bit-identical: the same additions in the same order)', () => {
    const rng = new Rng(7);
    let skew = 0;
    for (const [rows, cols] of SIZES)
      scoped(() => {
        const z = fillRandom(alloc(rows * cols, skew++ % 4), rng);
        const bias = fillRandom(alloc(cols, skew++ % 4), rng);
        const want = z.slice();
        tsElementwise.addBias(want, bias, rows, cols);
        wasm.addBias(z, bias, rows, cols);
        expect(z).toEqual(want);
        const dBias = fillRandom(alloc(cols, skew++ % 4), rng);
        const wantSum = dBias.slice();
        tsElementwise.colSum(wantSum, z, rows, cols);
        wasm.colSum(dBias, z, rows, cols);
        expect(dBias).toEqual(wantSum);
      });
  });

  for (const kind of ACTIVATIONS)
    it(`activate and activateBackward: ${kind}, in place and not`, () => {
      const rng = new Rng(11);
      let skew = 1;
      for (const len of [1, 3, 4, 17, 1000, 4099])
        scoped(() => {
          const z = activationInput(len, rng, skew++ % 4);
          // Separate output.
          const h = alloc(len, skew++ % 4);
          const want = new Float32Array(len);
          tsElementwise.activate(kind, want, z, len);
          wasm.activate(kind, h, z, len);
          // relu and identity are exact; leaky-relu rounds slope·z in float32 (≤ 1 ulp apart).
          const [rel, abs] = kind === 'sigmoid' || kind === 'tanh' ? [EXP_REL, EXP_ABS] : [2 ** -23, 0];
          expectClose(h, want, rel, abs, `${kind} forward`);
          // In place.
          const zh = z.slice();
          const inPlace = alloc(len, skew++ % 4);
          inPlace.set(z);
          tsElementwise.activate(kind, zh, zh, len);
          wasm.activate(kind, inPlace, inPlace, len);
          expectClose(inPlace, zh, rel, abs, `${kind} forward in place`);
          // Backward with h = f(z): float32 products vs TypeScript's float64 (≤ 3 roundings apart).
          const d = fillRandom(alloc(len, skew++ % 4), rng);
          const wantD = d.slice();
          tsElementwise.activateBackward(kind, wantD, h, len);
          wasm.activateBackward(kind, d, h, len);
          expectClose(d, wantD, 8 * 2 ** -24, 1e-37, `${kind} backward`);
        });
    });

  // The fused forward: bias and relu-like activations applied in the GEMM's last store, only after
  // the last K block (k > 256 spans several), on full and edge tiles.
  for (const kind of ACTIVATIONS)
    it(`linear (GEMM + bias + ${kind} in one call) equals the naive three passes`, () => {
      const rng = new Rng(19);
      let skew = 0;
      for (const [m, n, k] of [[1, 1, 1], [5, 3, 7], [4, 8, 300], [13, 10, 784], [64, 13, 513], [7, 33, 256]])
        for (const withBias of [true, false])
          scoped(() => {
            const inp = fillRandom(alloc(m * k, skew++ % 4), rng);
            const w = fillRandom(alloc(n * k, skew++ % 4), rng, -0.2, 0.2);
            const b = withBias ? fillRandom(alloc(n, skew++ % 4), rng) : null;
            const [h, z] = [alloc(m * n, skew++ % 4), alloc(m * n, skew++ % 4)];
            const [wantH, wantZ] = [new Float32Array(m * n), new Float32Array(m * n)];
            naiveKernels.linear(wantH, wantZ, inp, w, b, kind, m, k, n);
            wasm.linear(h, z, inp, w, b, kind, m, k, n);
            // The pre-activation within checkGemm's bound (k products + the bias); every activation
            // here is 1-Lipschitz, so h is within that plus the activation's own error.
            const magnitude = new Float32Array(m * n);
            naiveKernels.gemmNT(magnitude, inp.map(Math.abs), w.map(Math.abs), m, n, k, false);
            if (b) naiveKernels.addBias(magnitude, b.map(Math.abs), m, n);
            const [rel, abs] = kind === 'sigmoid' || kind === 'tanh' ? [EXP_REL, EXP_ABS] : [2 ** -23, 0];
            const u = 2 ** -24;
            for (let i = 0; i < m * n; i++) {
              const tol = 2 * (k + 9) * u * magnitude[i] + rel * Math.abs(wantH[i]) + abs + 1e-30;
              if (!(Math.abs(h[i] - wantH[i]) <= tol))
                throw new Error(`${kind} ${m}×${n}×${k}${withBias ? ' + bias' : ''}: element ${i} is ${h[i]}, the oracle says ${wantH[i]}`);
            }
            // Some outputs must be negative before the activation, or relu's check would prove little.
            if (m * n > 8) expect(wantZ.some((x) => x < 0) && wantZ.some((x) => x > 0)).toBe(true);
          });
    });

  it('sumSlots: slots summed by the fixed pairwise tree over [lo, hi), scaled', () => {
    const rng = new Rng(13);
    for (const count of [1, 2, 3, 4, 5, 7, 8, 11])
      for (const [lo, hi] of [[0, 1], [0, 64], [3, 1001], [17, 18], [0, 4099]])
        for (const scale of [1, 1 / 128, 1 / 3])
          scoped(() => {
            const len = hi + 5;
            const slots = Array.from({ length: count }, (_, s) => fillRandom(alloc(len, (s + count) % 4), rng));
            const out = fillRandom(alloc(len, (lo + count) % 4), rng);
            const want = out.slice();
            tsElementwise.sumSlots(want, slots, lo, hi, scale);
            wasm.sumSlots(out, slots, lo, hi, scale);
            // The same float32 additions in the same order; only a scale that is not a power of
            // two is rounded to float32 before the product (≤ 1 ulp apart).
            if (scale === 1 / 3) expectClose(out, want, 2 ** -23, 0, 'sumSlots');
            else expect(out).toEqual(want);
            if (scale === 1) for (let i = lo; i < hi; i += 7) expect(want[i]).toBe(pairwiseSum(slots.map((g) => g[i])));
          });
  });

  it('the pairwise tree: left subtree the largest power of two below n; ≤ 3 leaves is the left fold', () => {
    expect([2, 3, 4, 5, 6, 7, 8, 9, 16, 17].map(leftLeaves)).toEqual([1, 2, 2, 4, 4, 4, 4, 8, 8, 16]);
    const f = Math.fround;
    const v = [1e8, 1, -1e8, 1, 3, 5, 7];
    expect(pairwiseSum(v.slice(0, 3))).toBe(f(f(f(1e8) + 1) - 1e8));
    // ((0 + 1) + (2 + 3)) + ((4 + 5) + 6): the 1s are lost beside 1e8 either way, but differently.
    expect(pairwiseSum(v)).toBe(f(f(f(f(1e8) + 1) + f(-1e8 + 1)) + f(f(3 + 5) + 7)));
    expect(pairwiseSum(v)).not.toBe(v.reduce((a, x) => f(a + x), 0));
  });
});

// ---- exp and what is built on it: sigmoid, tanh, loss gradients ------------------------------

/** The module's `exp` export, which no backend calls: it is there to test the vector exp alone. */
function wasmExp(): (h: number, z: number, len: number) => void {
  const module = loadWasmModule();
  if (!module) throw new Error('dist/wasm/kernels.wasm is missing: run npm run build:wasm');
  const { exports } = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } });
  if (typeof exports.exp !== 'function') throw new Error('the module does not export exp: rebuild it');
  return exports.exp as (h: number, z: number, len: number) => void;
}

/** The float32 spacing at an exact value v (the denormal spacing below 2⁻¹²⁶). */
function ulpOf(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

/**
 * The largest |got − e^x| in float32 ulps of e^x (Math.exp in float64 as the exact value); Infinity
 * if a lane that must overflow does not.
 */
function maxExpUlpError(x: F32, got: F32): number {
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const exact = Math.exp(x[i]);
    if (Math.fround(exact) === Infinity) {
      if (got[i] !== Infinity) return Infinity;
      continue;
    }
    // NaN (a wrong NaN) propagates through Math.max and fails the comparison.
    worst = Math.max(worst, Math.abs(got[i] - exact) / ulpOf(exact));
  }
  return worst;
}

/** n consecutive float32 values on each side of v. */
function neighbours(v: number, n: number): number[] {
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0];
  const out = new Float32Array(2 * n + 1);
  const outBits = new Uint32Array(out.buffer);
  for (let i = -n; i <= n; i++) outBits[i + n] = bits + i;
  return Array.from(out);
}

const EDGES = [0, -0, 1e-8, -1e-8, 9, -9, 30, -30, 100, -100, 1000, -1000, Number.NaN];

describe('the wasm exp, sigmoid, tanh and loss gradients', () => {
  it('exp is within 1 float32 ulp of Math.exp, saturates to +Inf and 0, and keeps NaN', () => {
    const exp = wasmExp();
    const rng = new Rng(17);
    const values: number[] = [];
    for (let i = 0; i < 100_000; i++) values.push(rng.uniform(-110, 95));
    for (let i = 0; i < 20_000; i++) values.push((rng.next() < 0.5 ? -1 : 1) * 2 ** rng.uniform(-40, 3));
    // Where n switches (±ln2/2), the last finite result, the last normal one, the first zero.
    for (const v of [Math.LN2 / 2, -Math.LN2 / 2, 88.72283, -87.33654, -103.97208]) values.push(...neighbours(v, 200));
    values.push(-0, 89, 1000, Infinity, -104, -1000, -Infinity);
    scoped(() => {
      const x = alloc(values.length, 1);
      x.set(values);
      const got = alloc(values.length, 3);
      exp(got.byteOffset, x.byteOffset, x.length);
      // Measured over every float32 in [−104, 89]: at most 0.99 ulp (the fit itself adds 0.05).
      expect(maxExpUlpError(x, got)).toBeLessThanOrEqual(1);
      // The measure can fail: the same results 5 ulps off are caught.
      const off = got.slice();
      const bits = new Uint32Array(off.buffer);
      for (let i = 0; i < bits.length; i++) bits[i] += 5;
      expect(maxExpUlpError(x, off)).toBeGreaterThan(4);

      const specials = [0, -0, 88.8, 1000, Infinity, -104, -1000, -Infinity, Number.NaN];
      const s = alloc(specials.length, 2);
      s.set(specials);
      exp(s.byteOffset, s.byteOffset, s.length); // in place, vector lanes and scalar tail
      expect(Array.from(s)).toEqual([1, 1, Infinity, Infinity, Infinity, 0, 0, 0, Number.NaN]);
    });
  });

  // Tolerances EXP_REL and EXP_ABS: see above the element-wise kernels.
  for (const kind of ['sigmoid', 'tanh'] as const)
    it(`${kind} equals the TypeScript activation: odd lengths, misaligned, in place and not`, () => {
      const rng = new Rng(kind === 'sigmoid' ? 19 : 23);
      let skew = 1;
      for (const len of [1, 3, 5, 17, 1000])
        scoped(() => {
          const z = fillRandom(alloc(len, skew++ % 4), rng, -20, 20);
          for (const v of EDGES) z[rng.int(len)] = v;
          const want = new Float32Array(len);
          activations[kind].forward(want, z, len);
          const h = alloc(len, skew++ % 4);
          wasm.activate(kind, h, z, len);
          expectClose(h, want, EXP_REL, EXP_ABS, `${kind} forward`);
          const inPlace = alloc(len, skew++ % 4);
          inPlace.set(z);
          wasm.activate(kind, inPlace, inPlace, len);
          expect(inPlace).toEqual(h);
        });
      // Every edge value, through the vector lanes and the scalar tail alike.
      scoped(() => {
        const z = alloc(EDGES.length, 3);
        z.set(EDGES);
        const want = new Float32Array(EDGES.length);
        activations[kind].forward(want, z, EDGES.length);
        const h = alloc(EDGES.length, 2);
        wasm.activate(kind, h, z, EDGES.length);
        expectClose(h, want, EXP_REL, EXP_ABS, `${kind} edges`);
        // ±1000 saturate exactly, without overflow on the way.
        expect([h[10], h[11]]).toEqual(kind === 'sigmoid' ? [1, 0] : [1, -1]);
      });
    });

  it('sigmoid and tanh never decrease along sorted inputs', () => {
    scoped(() => {
      const rng = new Rng(29);
      const z = fillRandom(alloc(20_000, 1), rng, -100, 100).sort();
      const h = alloc(z.length, 2);
      for (const kind of ['sigmoid', 'tanh'] as const) {
        wasm.activate(kind, h, z, z.length);
        for (let i = 1; i < h.length; i++)
          if (h[i] < h[i - 1]) throw new Error(`${kind} decreases between z = ${z[i - 1]} and ${z[i]}`);
      }
    });
  });

  for (const loss of LOSSES)
    it(`lossGrad ${loss} equals the TypeScript gradient on random shapes`, () => {
      const rng = new Rng(37 + LOSSES.indexOf(loss));
      for (let t = 0; t < 30; t++)
        scoped(() => {
          const rows = t === 0 ? 1 : 1 + rng.int(130);
          const cols = t % 3 === 1 ? 10 : 1 + rng.int(13);
          const len = rows * cols;
          const classes = isClassIndexLoss(loss);
          // Logits spread up to ±30 (some e^(h − max) underflow), probabilities for bce, else [−1, 1].
          const spread = classes ? rng.uniform(1, 30) : 1;
          const h = loss === 'bce' ? fillRandom(alloc(len, t % 4), rng, 0.01, 0.99) : fillRandom(alloc(len, t % 4), rng, -spread, spread);
          const y = alloc(classes ? rows : len, (t + 1) % 4);
          for (let i = 0; i < y.length; i++)
            y[i] = classes ? rng.int(cols) : loss === 'bce' ? rng.next() : rng.uniform(-1, 1);
          const want = new Float32Array(len);
          const wantSum = tsElementwise.lossGrad(loss, want, h, y, rows, cols);
          // One float past dh must stay untouched.
          const dh = alloc(len + 1, (t + 2) % 4);
          dh[len] = 12345;
          const sum = wasm.lossGrad(loss, dh.subarray(0, len), h, y, rows, cols);
          expect(Math.abs(sum - wantSum), `loss sum ${rows}×${cols}`).toBeLessThanOrEqual(1e-5 * Math.abs(wantSum));
          // Plus 4 float32 ulps: wasm rounds (2/cols)·(h − y) three times where TypeScript rounds once.
          expectClose(dh.subarray(0, len), want, 2 ** -22, 1e-6, `${loss} dh ${rows}×${cols}`);
          expect(dh[len]).toBe(12345);
        });
    });
});

// ---- optimizers ------------------------------------------------------------------------------

// The TypeScript updates compute in float64 and round once per store; the wasm ones round every
// float32 operation. Over a few steps the difference stays at a few ulp of each value.
const OPT_REL = 1e-5;

function optimizerCase(
  steps: number, seed: number,
  update: (k: Kernels, params: F32, grad: F32, s0: F32, s1: F32, lo: number, hi: number, step: number) => void,
): void {
  scoped(() => {
    const rng = new Rng(seed);
    const len = 1031;
    const [lo, hi] = [5, len - 3];
    const make = (): F32[] => [alloc(len, 1), alloc(len, 2), alloc(len, 3), alloc(len, 0)];
    const w = make();
    const t = [0, 1, 2, 3].map(() => new Float32Array(len));
    fillRandom(w[0], rng);
    w[2].fill(0);
    w[3].fill(0);
    for (let i = 0; i < 4; i++) t[i].set(w[i]);
    for (let step = 1; step <= steps; step++) {
      fillRandom(w[1], rng, -0.5, 0.5);
      t[1].set(w[1]);
      update(wasm, w[0], w[1], w[2], w[3], lo, hi, step);
      update(tsKernels, t[0], t[1], t[2], t[3], lo, hi, step);
    }
    expectClose(w[0], t[0], OPT_REL, 1e-7, 'params');
    expectClose(w[2], t[2], OPT_REL, 1e-7, 'state 0');
    expectClose(w[3], t[3], OPT_REL, 1e-12, 'state 1');
    // Outside [lo, hi) nothing moved.
    for (const i of [0, lo - 1, hi, len - 1]) expect(w[0][i]).toBe(t[0][i]);
  });
}

describe('optimizers equal the TypeScript ones over several steps', () => {
  const sgdCases: [string, Omit<SgdParams, 'firstStep'>][] = [
    ['plain', { lr: 0.05, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 }],
    ['momentum', { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 }],
    ['nesterov', { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 }],
    ['weight decay + dampening', { lr: 0.1, momentum: 0.8, dampening: 0.1, nesterov: false, weightDecay: 0.01 }],
    ['weight decay, no momentum', { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.05 }],
  ];
  for (const [name, p] of sgdCases)
    it(`sgd: ${name} (first step included)`, () => {
      optimizerCase(6, 21, (k, params, grad, buf, _v, lo, hi, step) =>
        k.sgd(params, p.momentum !== 0 ? buf : grad, params, p.momentum !== 0 ? buf : grad, grad, lo, hi, { ...p, firstStep: step === 1 }));
    });

  // The step's update: reduce + SGD in one call. On wasm plain momentum runs as one fused pass
  // that never stores the mean gradient; it must give the bits of the two calls, in and out of place.
  for (const k of [wasm, tsKernels])
    it(`sumSgd (${k.name}) = sumSlots then sgd, bit for bit, in and out of place`, () => {
      const rng = new Rng(43);
      for (const [name, p] of sgdCases)
        for (const firstStep of [false, true])
          for (const count of [1, 2, 3])
            for (const [lo, hi] of [[0, 64], [3, 1001], [17, 18]])
              scoped(() => {
                const len = hi + 3;
                const sp = { ...p, firstStep };
                const scale = 1 / 96;
                const slots = Array.from({ length: count }, (_, i) => fillRandom(alloc(len, (i + lo) % 4), rng, -2, 2));
                const [params, buf] = [fillRandom(alloc(len, 1), rng), fillRandom(alloc(len, 2), rng, -0.1, 0.1)];
                const before = [params.slice(), buf.slice()];
                // The two calls, in place on copies.
                const [wantP, wantB, wantG] = [alloc(len, 2), alloc(len, 3), alloc(len, 1)];
                wantP.set(params);
                wantB.set(buf);
                k.sumSlots(wantG, slots, lo, hi, scale);
                k.sgd(wantP, wantB, wantP, wantB, wantG, lo, hi, sp);
                const [outP, outB, grad] = [alloc(len, 3), alloc(len, 1), alloc(len, 2)];
                k.sumSgd(outP, outB, params, buf, grad, slots, scale, lo, hi, sp);
                const what = `${name}${firstStep ? ', first step' : ''}, ${count} slot(s), [${lo}, ${hi})`;
                expect(sameBits(outP.subarray(lo, hi), wantP.subarray(lo, hi)), `params out of place: ${what}`).toBe(true);
                if (p.momentum !== 0) expect(sameBits(outB.subarray(lo, hi), wantB.subarray(lo, hi)), `buffer out of place: ${what}`).toBe(true);
                expect(sameBits(params, before[0]) && sameBits(buf, before[1]), `inputs untouched: ${what}`).toBe(true);
                k.sumSgd(params, buf, params, buf, grad, slots, scale, lo, hi, sp);
                expect(sameBits(params.subarray(lo, hi), wantP.subarray(lo, hi)), `params in place: ${what}`).toBe(true);
                // Outside [lo, hi) nothing moves.
                for (const i of [0, lo - 1, hi, len - 1].filter((i) => i >= 0 && (i < lo || i >= hi))) expect(params[i]).toBe(before[0][i]);
              });
    });

  const adamCases: [string, Parameters<typeof adamParams>[0]][] = [
    ['defaults', { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }],
    ['weight decay, other betas', { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.01 }],
  ];
  for (const [name, p] of adamCases)
    it(`adam: ${name}`, () => {
      optimizerCase(6, 31, (k, params, grad, m, v, lo, hi, step) => k.adam(params, m, v, params, m, v, grad, lo, hi, adamParams(p, step)));
    });

  // The update spread over threads reads one copy of the weights and writes the other: out of place
  // must give the bits of in place, and leave its inputs as they were (so a re-run is exact).
  for (const k of [wasm, tsKernels])
    it(`sgd and adam out of place (${k.name}): the bits of in place, inputs untouched`, () => {
      scoped(() => {
        const rng = new Rng(41);
        const len = 517;
        const [lo, hi] = [3, len - 2];
        const grad = fillRandom(alloc(len, 1), rng, -0.5, 0.5);
        // params, and two state vectors (v of Adam must not be negative).
        const inputs = [fillRandom(alloc(len, 2), rng), fillRandom(alloc(len, 3), rng, 0, 1), fillRandom(alloc(len, 1), rng, 0, 1)];
        const before = inputs.map((x) => Float32Array.from(x));
        const copyOf = (x: F32, skew: number): F32 => {
          const c = alloc(len, skew);
          c.set(x);
          return c;
        };
        const outs = [alloc(len, 3), alloc(len, 1), alloc(len, 2)];
        const [p, m, v] = inputs;
        const [po, mo, vo] = outs;
        const same = (a: readonly F32[], b: readonly F32[], what: string): void =>
          a.forEach((x, i) => expect(sameBits(x.subarray(lo, hi), b[i].subarray(lo, hi)), `${what} ${i}`).toBe(true));

        const sgdP = { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0, firstStep: false };
        k.sgd(po, mo, p, m, grad, lo, hi, sgdP);
        same(inputs, before, 'sgd input');
        const [pi, mi] = [copyOf(p, 1), copyOf(m, 2)];
        k.sgd(pi, mi, pi, mi, grad, lo, hi, sgdP);
        same([po, mo], [pi, mi], 'sgd out of place vs in place');

        const adamP = adamParams({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 }, 3);
        k.adam(po, mo, vo, p, m, v, grad, lo, hi, adamP);
        same(inputs, before, 'adam input');
        const [pa, ma, va] = [copyOf(p, 3), copyOf(m, 1), copyOf(v, 2)];
        k.adam(pa, ma, va, pa, ma, va, grad, lo, hi, adamP);
        same([po, mo, vo], [pa, ma, va], 'adam out of place vs in place');
      });
    });
});

// ---- a whole forward + backward on both backends ---------------------------------------------

describe('a training step agrees between the wasm and ts backends', () => {
  for (const [hidden, output, loss] of [['relu', 'identity', 'cross-entropy'], ['tanh', 'sigmoid', 'bce'], ['leaky-relu', 'identity', 'mse']] as const)
    it(`${hidden}/${output}/${loss}: gradient sums within float32 tolerance`, () => {
      const s = spec([37, 50, 19, 10], hidden as Activation, output as Activation, loss);
      const data = randomData(s, 45, 5);
      const gradients = (['ts', 'wasm'] as const).map((choice) => {
        const arena = createArena(s, { shards: 1, maxRows: 16, stateVectors: 0 });
        const layout = paramLayout(s);
        initParams(arena.params, layout, 'pytorch', 9);
        const model: Model = { spec: s, layout, kernels: createKernels(choice, arena.memory, arena.workspaces[0].scratch) };
        expect(model.kernels.name).toBe(choice);
        const r = shardGradients(model, denseViews(layout, arena.params), denseViews(layout, arena.slots[0]), arena.slots[0], arena.workspaces[0], 16, data, null, 0, data.n);
        return { lossSum: r.lossSum, grad: arena.slots[0].slice(0, layout.size) };
      });
      const [ts, w] = gradients;
      expect(w.lossSum).toBeCloseTo(ts.lossSum, 4);
      let maxAbs = 0;
      for (const g of ts.grad) maxAbs = Math.max(maxAbs, Math.abs(g));
      // Sums of 45 samples through 3 layers: errors of a few float32 roundings of the largest terms.
      expectClose(w.grad, ts.grad, 1e-4, 1e-5 * maxAbs, 'gradient sum');
    });
});
