// The native kernels (src/core/kernels/native/*.cc) on every ISA path this CPU has: the GEMMs and the
// fused forward against the naive oracle, every element-wise pass, loss gradient and optimizer slice
// bit for bit against the wasm module they mirror, on views at misaligned offsets of a shared arena;
// gradient checks and whole training steps through native; threads and faults bit-identical; and the
// fallback when the addon is missing (auto → wasm with one line, --kernels native exits 2).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { initParams } from '../src/core/init.js';
import { createKernels, resolveKernels } from '../src/core/kernels/index.js';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { createNativeKernels, nativeIsaSupported, nativeKernelsAvailable, nativeScratchFloats, NATIVE_ISAS, type NativeIsa } from '../src/core/kernels/native.js';
import type { F32 } from '../src/core/kernels/types.js';
import { createWasmKernels, wasmScratchFloats } from '../src/core/kernels/wasm.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients, type Model } from '../src/core/model.js';
import { Rng } from '../src/core/rng.js';
import { ACTIVATIONS, type Activation, type LossName } from '../src/core/spec.js';
import { parseConfig } from '../src/core/config.js';
import { adamParams } from '../src/core/optim.js';
import { train, type Reporter } from '../src/coordinator/train/trainer.js';
import { checkGrad, randomData, relDiff, sameBits, spec, type Fixture } from './helpers.js';
import { fillRandom, gemmCase, LAYOUTS, testArena } from './kernel-oracle.js';

// ---- a shared arena with a bump allocator that misaligns views ------------------------------

const arena = testArena(640);
const { memory, alloc, scoped } = arena;

/** A copy of v in the arena (the wasm kernels take only views on their memory). */
function copyIn(v: F32, skew: number): F32 {
  const c = alloc(v.length, skew);
  c.set(v);
  return c;
}

/**
 * Equal value for value, bits included except in NaNs: which NaN an operation returns is not
 * specified by WebAssembly, so a NaN only has to stay a NaN.
 */
function sameValues(a: F32, b: F32): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}


const MAX_DIM = 1024;
const scratch = alloc(Math.max(nativeScratchFloats(MAX_DIM, MAX_DIM), wasmScratchFloats(MAX_DIM, MAX_DIM)), 3);
const wasm = createWasmKernels(memory, scratch);

// ---- which paths run here ---------------------------------------------------------------------

/** The CPU's flags as the kernel reports them, independently of the addon's own detection. */
const cpuFlags = ((): Set<string> => {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
})();
const cpuHas: Record<NativeIsa, boolean> = {
  avx2: process.arch === 'x64' && cpuFlags.has('avx2') && cpuFlags.has('fma'),
  avx512: process.arch === 'x64' && cpuFlags.has('avx2') && cpuFlags.has('fma') && cpuFlags.has('avx512f'),
};

describe('the native addon', () => {
  it('is built, loads, and detects the same paths as /proc/cpuinfo', () => {
    const status = nativeKernelsAvailable();
    if (cpuHas.avx2) expect(status, 'dist/native/dptrain_kernels.node must build on this x86-64 machine with AVX2').toEqual({ ok: true, isa: cpuHas.avx512 ? 'avx512' : 'avx2' });
    for (const isa of NATIVE_ISAS) expect(nativeIsaSupported(isa), isa).toBe(cpuHas[isa]);
  });

  it('createKernels: auto and native pick the best path, wasm and ts stay themselves', () => {
    const best = `native-${cpuHas.avx512 ? 'avx512' : 'avx2'}`;
    expect(createKernels('auto', memory, scratch).name).toBe(best);
    expect(createKernels('native', memory, scratch).name).toBe(best);
    expect(createKernels('wasm', memory, scratch).name).toBe('wasm');
    expect(createKernels('ts', memory, scratch).name).toBe('ts');
    if (cpuHas.avx2) expect(createKernels('native-avx2', memory, scratch).name).toBe('native-avx2');
  });

  it('DPTRAIN_NATIVE_ISA=avx2 forces the lower path; a bad value is refused with its reason', () => {
    const saved = process.env.DPTRAIN_NATIVE_ISA;
    try {
      process.env.DPTRAIN_NATIVE_ISA = 'avx2';
      expect(resolveKernels('auto').backend).toBe('native-avx2');
      process.env.DPTRAIN_NATIVE_ISA = 'sse9';
      expect(() => resolveKernels('native')).toThrow(/--kernels native: native kernels unavailable: DPTRAIN_NATIVE_ISA must be avx2 or avx512, got sse9/);
      process.env.DPTRAIN_NATIVE_ISA = 'avx512';
      if (cpuHas.avx512) expect(resolveKernels('native').backend).toBe('native-avx512');
      else expect(() => resolveKernels('native')).toThrow(/no AVX-512F/);
    } finally {
      if (saved === undefined) delete process.env.DPTRAIN_NATIVE_ISA;
      else process.env.DPTRAIN_NATIVE_ISA = saved;
    }
  });

  it('checks lengths and scratch with a clear message', () => {
    const k = createNativeKernels(memory, scratch);
    expect(() => k.addBias(new Float32Array(3), new Float32Array(4), 2, 2)).toThrow(/z holds 3 floats, 4 needed/);
    const small = createNativeKernels(memory, new Float32Array(64));
    expect(() => small.gemmNT(new Float32Array(64), new Float32Array(64), new Float32Array(64), 8, 8, 8, false)).toThrow(/scratch holds 64 floats/);
  });
});

// ---- per path ----------------------------------------------------------------------------------

const DIMS = [1, 3, 7, 17, 64, 128, 513, 784];
// Every triple of DIMS is 512 products per layout: the small ones all, the large ones (m·n·k beyond
// 4M, slow in the float64 oracle) a seeded sample of them plus the reference MLP's.
const TRIPLES: [number, number, number][] = [];
for (const m of DIMS) for (const n of DIMS) for (const k of DIMS) if (m * n * k <= 1 << 20) TRIPLES.push([m, n, k]);
const LARGE: [number, number, number][] = [[128, 512, 784], [128, 10, 512], [512, 784, 128], [10, 512, 128], [128, 784, 512], [128, 512, 10], [513, 513, 17], [784, 7, 784], [64, 784, 513], [17, 784, 513]];

function describePath(isa: NativeIsa): void {
  const label = `native-${isa}`;
  if (!cpuHas[isa]) {
    // Not run: said so by name, and the detection must agree that the CPU lacks the path.
    it(`${label}: NOT RUN, this CPU lacks ${isa === 'avx512' ? 'AVX-512F' : 'AVX2 + FMA'} (the addon's detection agrees)`, () => {
      expect(nativeIsaSupported(isa)).toBe(false);
      expect(() => createNativeKernels(memory, scratch, isa)).toThrow(/unavailable/);
    });
    return;
  }

  describe(label, () => {
    const k = createNativeKernels(memory, scratch, isa);

    it('is named for its path', () => expect(k.name).toBe(label));

    for (const layout of LAYOUTS) {
      it(`${layout}: m, n, k in {1, 3, 7, 17, 64, 128, 513, 784}, accumulate false and true, misaligned views`, () => {
        let seed = 1;
        for (const [m, n, kk] of TRIPLES) gemmCase(arena, layout, m, n, kk, seed % 2 === 0, seed++, [k]);
      });
      it(`${layout}: the large and reference shapes, both accumulate modes`, () => {
        let seed = 900;
        for (const [m, n, kk] of LARGE) for (const acc of [false, true]) gemmCase(arena, layout, m, n, kk, acc, seed++, [k]);
      });
      it(`${layout}: seeded random shapes`, () => {
        const rng = new Rng(300 + LAYOUTS.indexOf(layout));
        for (let t = 0; t < 60; t++) {
          const dim = (): number => 1 + rng.int(rng.next() < 0.5 ? 20 : 300);
          gemmCase(arena, layout, dim(), dim(), dim(), rng.next() < 0.5, 2000 + t, [k]);
        }
      });
    }

    for (const act of ACTIVATIONS)
      it(`linear + bias + ${act} equals the naive three passes (the epilogue after the last K block only)`, () => {
        const rng = new Rng(19);
        let skew = 1;
        for (const [m, n, kk] of [[1, 1, 1], [5, 3, 7], [4, 8, 300], [13, 10, 784], [64, 13, 513], [7, 33, 256], [128, 512, 784], [9, 17, 600]])
          for (const withBias of [true, false])
            scoped(() => {
              const inp = fillRandom(alloc(m * kk, skew++ % 4), rng);
              const w = fillRandom(alloc(n * kk, skew++ % 4), rng, -0.2, 0.2);
              const b = withBias ? fillRandom(alloc(n, skew++ % 4), rng) : null;
              const [h, z] = [alloc(m * n, skew++ % 4), alloc(m * n, skew++ % 4)];
              const [wantH, wantZ] = [new Float32Array(m * n), new Float32Array(m * n)];
              naiveKernels.linear(wantH, wantZ, inp, w, b, act, m, kk, n);
              k.linear(h, z, inp, w, b, act, m, kk, n);
              const magnitude = new Float32Array(m * n);
              naiveKernels.gemmNT(magnitude, inp.map(Math.abs), w.map(Math.abs), m, n, kk, false);
              if (b) naiveKernels.addBias(magnitude, b.map(Math.abs), m, n);
              const rel = act === 'sigmoid' || act === 'tanh' ? 4 * 2 ** -23 : 2 ** -23;
              for (let i = 0; i < m * n; i++) {
                const tol = 2 * (kk + 9) * 2 ** -24 * magnitude[i] + rel * Math.abs(wantH[i]) + 2 ** -147 + 1e-30;
                if (!(Math.abs(h[i] - wantH[i]) <= tol)) throw new Error(`${act} ${m}×${n}×${kk}: element ${i} is ${h[i]}, the oracle says ${wantH[i]}`);
              }
            });
      });

    // The element-wise code mirrors the wasm module operation for operation: the same bits.
    it('addBias, colSum, activate and activateBackward: the wasm bits, in place and not, with NaN, ±0 and ±1e30', () => {
      const rng = new Rng(7);
      let skew = 0;
      for (const [rows, cols] of [[1, 1], [1, 3], [7, 10], [3, 513], [128, 512], [5, 17]])
        scoped(() => {
          const z = fillRandom(alloc(rows * cols, skew++ % 4), rng, -3, 3);
          const bias = fillRandom(alloc(cols, skew++ % 4), rng);
          const zw = copyIn(z, skew++ % 4);
          wasm.addBias(zw, bias, rows, cols);
          k.addBias(z, bias, rows, cols);
          expect(sameValues(z, zw), 'addBias').toBe(true);
          const dBias = fillRandom(alloc(cols, skew++ % 4), rng);
          const dw = alloc(cols, skew++ % 4);
          dw.set(dBias);
          wasm.colSum(dw, z, rows, cols);
          k.colSum(dBias, z, rows, cols);
          expect(sameValues(dBias, dw), 'colSum').toBe(true);
        });
      for (const kind of ACTIVATIONS)
        for (const len of [1, 3, 4, 17, 1000, 4099])
          scoped(() => {
            const z = fillRandom(alloc(len, skew++ % 4), rng, -12, 12);
            [0, -0, Number.NaN, 1e30, -1e30, 1e-40, -100].forEach((s, i) => { if (i < len) z[rng.int(len)] = s; });
            const [h, hw] = [alloc(len, skew++ % 4), alloc(len, skew++ % 4)];
            k.activate(kind, h, z, len);
            wasm.activate(kind, hw, z, len);
            expect(sameValues(h, hw), `${kind} forward`).toBe(true);
            const inPlace = copyIn(z, skew++ % 4);
            k.activate(kind, inPlace, inPlace, len);
            expect(sameValues(inPlace, hw), `${kind} forward in place`).toBe(true);
            const d = fillRandom(alloc(len, skew++ % 4), rng);
            const dw = copyIn(d, skew++ % 4);
            k.activateBackward(kind, d, h, len);
            wasm.activateBackward(kind, dw, h, len);
            expect(sameValues(d, dw), `${kind} backward`).toBe(true);
          });
    });

    it('lossGrad (cross-entropy, mse, half-sse, and mae, bce through TypeScript): the wasm bits and loss sums', () => {
      const rng = new Rng(17);
      let skew = 1;
      for (const loss of ['cross-entropy', 'mse', 'half-sse', 'mae', 'bce'] as LossName[])
        for (const [rows, cols] of [[1, 1], [1, 10], [7, 3], [64, 10], [5, 513], [3, 4]])
          scoped(() => {
            const h = loss === 'bce' ? fillRandom(alloc(rows * cols, skew++ % 4), rng, 0.01, 0.99) : fillRandom(alloc(rows * cols, skew++ % 4), rng, -20, 20);
            const y = loss === 'cross-entropy'
              ? copyIn(new Float32Array(rows).map(() => rng.int(cols)), skew++ % 4)
              : fillRandom(alloc(rows * cols, skew++ % 4), rng, loss === 'bce' ? 0 : -1, 1);
            const [dh, dw] = [alloc(rows * cols, skew++ % 4), alloc(rows * cols, skew++ % 4)];
            const got = k.lossGrad(loss, dh, h, y, rows, cols);
            const want = wasm.lossGrad(loss, dw, h, y, rows, cols);
            expect(got, `${loss} ${rows}×${cols} loss`).toBe(want);
            expect(sameValues(dh, dw), `${loss} ${rows}×${cols} gradient`).toBe(true);
            // And against the oracle's float64 formulas.
            const dn = new Float32Array(rows * cols);
            expect(Math.abs(naiveKernels.lossGrad(loss, dn, h, y, rows, cols) - got)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(got)));
            for (let i = 0; i < dn.length; i++) expect(Math.abs(dh[i] - dn[i])).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(dn[i]));
          });
      // Cross-entropy subtracts the row max first: huge logits stay finite.
      const h = Float32Array.of(1000, 999, -1000);
      const dh = new Float32Array(3);
      const loss = k.lossGrad('cross-entropy', dh, h, Float32Array.of(1), 1, 3);
      expect(loss).toBeCloseTo(1 + Math.log(1 + Math.exp(-1)), 5);
      expect(Array.from(dh).every(Number.isFinite)).toBe(true);
    });

    it('sumSlots, sgd, sumSgd and adam over [lo, hi), in and out of place: the wasm bits', () => {
      const rng = new Rng(23);
      const sgdCases = [
        { lr: 0.05, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
        { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 },
        { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 },
        { lr: 0.1, momentum: 0.8, dampening: 0.1, nesterov: false, weightDecay: 0.01 },
      ];
      for (const [lo, hi] of [[0, 1], [3, 1001], [17, 18], [0, 4099]])
        for (const count of [1, 2, 5, 8, 11])
          scoped(() => {
            const len = hi + 3;
            const slots = Array.from({ length: count }, (_, i) => fillRandom(alloc(len, (i + lo) % 4), rng, -2, 2));
            for (const scale of [1, 1 / 128, 1 / 3]) {
              const [out, outW] = [fillRandom(alloc(len, 1), rng), alloc(len, 2)];
              outW.set(out);
              k.sumSlots(out, slots, lo, hi, scale);
              wasm.sumSlots(outW, slots, lo, hi, scale);
              expect(sameValues(out, outW), `sumSlots ${count} [${lo}, ${hi}) ×${scale}`).toBe(true);
            }
            for (const p of sgdCases)
              for (const firstStep of [false, true]) {
                const sp = { ...p, firstStep };
                const params = fillRandom(alloc(len, 3), rng);
                const buf = fillRandom(alloc(len, 1), rng, -0.1, 0.1);
                const grad = fillRandom(alloc(len, 2), rng);
                const before = [params.slice(), buf.slice()];
                const outs = [alloc(len, 1), alloc(len, 2), alloc(len, 3), alloc(len, 1)];
                k.sgd(outs[0], outs[1], params, buf, grad, lo, hi, sp);
                wasm.sgd(outs[2], outs[3], params, buf, grad, lo, hi, sp);
                expect(sameValues(outs[0].subarray(lo, hi), outs[2].subarray(lo, hi)), 'sgd params').toBe(true);
                if (p.momentum) expect(sameValues(outs[1].subarray(lo, hi), outs[3].subarray(lo, hi)), 'sgd buffer').toBe(true);
                expect(sameValues(params, before[0]) && sameValues(buf, before[1]), 'sgd inputs untouched').toBe(true);
                const [g1, g2] = [alloc(len, 0), alloc(len, 1)];
                k.sumSgd(outs[0], outs[1], params, buf, g1, slots, 1 / 96, lo, hi, sp);
                wasm.sumSgd(outs[2], outs[3], params, buf, g2, slots, 1 / 96, lo, hi, sp);
                expect(sameValues(outs[0].subarray(lo, hi), outs[2].subarray(lo, hi)), 'sumSgd params').toBe(true);
                k.sumSgd(params, buf, params, buf, g1, slots, 1 / 96, lo, hi, sp);
                expect(sameValues(params.subarray(lo, hi), outs[2].subarray(lo, hi)), 'sumSgd in place').toBe(true);
              }
            for (const step of [1, 2, 10]) {
              const ap = adamParams({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: step === 2 ? 0.01 : 0 }, step);
              const ins = [fillRandom(alloc(len, 1), rng), fillRandom(alloc(len, 2), rng, -0.1, 0.1), fillRandom(alloc(len, 3), rng, 0, 0.1), fillRandom(alloc(len, 0), rng)];
              const [o1, o2] = [[alloc(len, 1), alloc(len, 2), alloc(len, 3)], [alloc(len, 3), alloc(len, 1), alloc(len, 2)]];
              k.adam(o1[0], o1[1], o1[2], ins[0], ins[1], ins[2], ins[3], lo, hi, ap);
              wasm.adam(o2[0], o2[1], o2[2], ins[0], ins[1], ins[2], ins[3], lo, hi, ap);
              o1.forEach((o, i) => expect(sameValues(o.subarray(lo, hi), o2[i].subarray(lo, hi)), `adam ${i} step ${step}`).toBe(true));
            }
          });
    });

    it('gradient checks through native (relu/identity/cross-entropy, tanh/sigmoid/bce, leaky-relu/identity/mse)', () => {
      for (const [hidden, output, loss] of [['relu', 'identity', 'cross-entropy'], ['tanh', 'sigmoid', 'bce'], ['leaky-relu', 'identity', 'mse'], ['sigmoid', 'tanh', 'half-sse']] as const) {
        const s = spec([3, 4, 2], hidden as Activation, output as Activation, loss);
        const arena = createArena(s, { shards: 1, maxRows: 16, stateVectors: 0 });
        const layout = paramLayout(s);
        initParams(arena.params, layout, 'pytorch', 3);
        const model: Model = { spec: s, layout, kernels: createNativeKernels(arena.memory, arena.workspaces[0].scratch, isa) };
        const f: Fixture = { model, arena, p: denseViews(layout, arena.params), g: denseViews(layout, arena.slots[0]) };
        // eps, atol and rtol as test/core-model.test.ts explains them.
        const r = checkGrad(f, randomData(s, 5, 4), 1e-3, 2e-3, 2e-2);
        expect(r.worst, `${hidden}/${output}/${loss}: worst at ${r.worstIndex}`).toBeLessThanOrEqual(1);
      }
    });

    for (const [hidden, output, loss] of [['relu', 'identity', 'cross-entropy'], ['tanh', 'sigmoid', 'bce'], ['leaky-relu', 'identity', 'mse']] as const)
      it(`a whole step's gradient sums equal wasm's within float32 tolerance: ${hidden}/${output}/${loss}`, () => {
        const s = spec([37, 50, 19, 10], hidden as Activation, output as Activation, loss);
        const data = randomData(s, 45, 5);
        const [n, w] = (['native', 'wasm'] as const).map((backend) => {
          const arena = createArena(s, { shards: 1, maxRows: 16, stateVectors: 0 });
          const layout = paramLayout(s);
          initParams(arena.params, layout, 'pytorch', 9);
          const ws = arena.workspaces[0];
          const kernels = backend === 'wasm' ? createWasmKernels(arena.memory, ws.scratch) : createNativeKernels(arena.memory, ws.scratch, isa);
          const model: Model = { spec: s, layout, kernels };
          const r = shardGradients(model, denseViews(layout, arena.params), denseViews(layout, arena.slots[0]), arena.slots[0], arena.workspaces[0], 16, data, null, 0, data.n);
          return { lossSum: r.lossSum, grad: arena.slots[0].slice(0, layout.size) };
        });
        expect(n.lossSum).toBeCloseTo(w.lossSum, 4);
        expect(relDiff(n.grad, w.grad)).toBeLessThan(1e-5);
      });
  });
}

for (const isa of ['avx512', 'avx2'] as const) describePath(isa);

// ---- training runs on native ------------------------------------------------------------------

const silent = (): Reporter & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, start() {}, step() {}, epoch() {}, log: (l) => void lines.push(l), close() {} };
};

const cfg = parseConfig(
  {
    model: { layers: [6, 16, 12, 4], hidden: 'relu', output: 'linear' },
    loss: 'cross-entropy',
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    data: { source: 'synthetic', name: 'spirals' },
    training: { epochs: 4, batchSize: 16, shuffle: true, seed: 3 },
  },
  'test-config',
  tmpdir(),
);
const data = { train: randomData(cfg.model, 200, 1), test: randomData(cfg.model, 40, 2) };
const runOn = (kernels: 'native' | 'wasm', workers: number, extra: object = {}) =>
  train({ config: cfg, workers, kernels, reporter: silent(), data, skipEval: true, maxSteps: 30, ...extra });

describe.runIf(cpuHas.avx2)('training on native', () => {
  it('1–4 threads: within 1e-5 of each other, bit-identical run to run, and within float tolerance of wasm', async () => {
    const one = await runOn('native', 1);
    const again = await runOn('native', 1);
    expect(sameBits(one.params, again.params)).toBe(true);
    for (const n of [2, 3, 4]) {
      const [a, b] = [await runOn('native', n), await runOn('native', n)];
      expect(sameBits(a.params, b.params), `${n} threads run to run`).toBe(true);
      expect(relDiff(a.params, one.params), `${n} threads vs 1`).toBeLessThan(1e-5);
    }
    const w = await runOn('wasm', 2);
    expect(relDiff(one.params, w.params)).toBeLessThan(1e-4);
  });

  it.each(['throw', 'exit'] as const)('a thread that %ss mid-step changes nothing: bit-identical to the clean run', async (mode) => {
    const clean = await runOn('native', 2, { maxSteps: 20 });
    const reporter = silent();
    const hurt = await runOn('native', 2, { maxSteps: 20, fault: { step: 7, slot: 1, mode }, reporter });
    expect(reporter.lines.some((l) => /step 7 .*failed .*re-running it/.test(l)), reporter.lines.join('\n')).toBe(true);
    expect(sameBits(hurt.params, clean.params)).toBe(true);
  });
});

// ---- the fallback, through the real CLI ----------------------------------------------------------

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

describe('without the addon (DPTRAIN_NATIVE_PATH pointing at nothing: a failed build)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-native-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify({
    model: { layers: [2, 8, 2], hidden: 'relu', output: 'linear' }, loss: 'cross-entropy', optimizer: { name: 'sgd', lr: 0.1 },
    data: { source: 'synthetic', name: 'xor', n: 64 }, training: { epochs: 1, batchSize: 16, seed: 1 },
  }));
  const env = { ...process.env, DPTRAIN_NATIVE_PATH: join(dir, 'missing.node') };
  const dptrain = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000, env });

  it('--kernels auto trains on wasm and says so in one line at the start', () => {
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--kernels', 'auto']);
    expect(r.status).toBe(0);
    // The reporter's log lines go to stderr: this one is all there is.
    expect(r.stderr).toMatch(/^native kernels unavailable \(cannot load .*missing\.node: [^\n]*\); using wasm\n$/);
    expect(r.stdout).toMatch(/kernels wasm$/m);
  });

  it('--kernels native exits 2 with one line saying why', () => {
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--kernels', 'native']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^dptrain: --kernels native: native kernels unavailable: cannot load .*missing\.node: [^\n]*\n$/);
  });
});
