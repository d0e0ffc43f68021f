// npm run bench:kernels — the kernel backends side by side at fixed sizes: GFLOP/s of the reference
// MLP's products (ts, wasm, each native ISA path this CPU has, torch.mm when PyTorch is installed) and
// single-thread training samples/s beside PyTorch and TF.js. Writes bench/results/kernels.json.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { tfjsTrainingRow } from './tfjs.js';
import { createArena } from '../src/core/arena.js';
import type { Dataset } from '../src/core/data/types.js';
import { initParams } from '../src/core/init.js';
import { createKernels } from '../src/core/kernels/index.js';
import type { F32, Kernels } from '../src/core/kernels/types.js';
import { loadWasmModule, wasmScratchFloats } from '../src/core/kernels/wasm.js';
import { NATIVE_ISAS, nativeIsaSupported, nativeKernelsAvailable, nativeScratchFloats } from '../src/core/kernels/native.js';
import { tsScratchFloats } from '../src/core/kernels/ts.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients, type Model } from '../src/core/model.js';
import { updateSlice, type OptimizerConfig } from '../src/core/optim.js';
import { Rng } from '../src/core/rng.js';
import type { ModelSpec } from '../src/core/spec.js';

/** One core's 128-bit SIMD multiply + add ceiling on the reference machine (DESIGN.md). */
const REFERENCE_CEILING = 61.7;
const NATIVE = NATIVE_ISAS.filter(nativeIsaSupported).map((isa) => `native-${isa}` as const);
const BACKENDS = ['ts', 'wasm', ...NATIVE] as const;
type Backend = (typeof BACKENDS)[number];

const quick = process.argv.includes('--quick');
const budget = { time: quick ? 150 : 1000, warmupTime: quick ? 50 : 250, iterations: quick ? 3 : 10, warmupIterations: 2 };

// ---- the products ----------------------------------------------------------------------------

type Product = 'gemmNT' | 'gemmTN' | 'gemmNN';

interface ProductShape {
  readonly label: string;
  readonly product: Product;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly accumulate: boolean;
}

const BATCH = 128;
const LAYERS: [number, number][] = [[784, 512], [512, 512], [512, 10]];

/** Forward Z = H·Wᵀ, dW += dZᵀ·H and dX = dZ·W of each reference layer at batch 128. */
const SHAPES: ProductShape[] = LAYERS.flatMap(([nIn, nOut]): ProductShape[] => [
  { label: `fwd ${BATCH}×${nIn}→${nOut}`, product: 'gemmNT', m: BATCH, n: nOut, k: nIn, accumulate: false },
  { label: `dW  ${nOut}×${nIn} (k=${BATCH})`, product: 'gemmTN', m: nOut, n: nIn, k: BATCH, accumulate: true },
  { label: `dX  ${BATCH}×${nIn} (k=${nOut})`, product: 'gemmNN', m: BATCH, n: nIn, k: nOut, accumulate: false },
]);

interface ProductRow {
  readonly label: string;
  readonly product: Product;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly gflops: Partial<Record<Backend | 'torch', number>>;
}

/** A shared memory holding the largest operands (past the module's reserved 64 KiB), and the kernels. */
function productArena(): { kernels: Record<Backend, Kernels>; a: F32; b: F32; c: F32 } {
  const maxOperand = 784 * 512;
  const scratchFloats = Math.max(wasmScratchFloats(784, 784), tsScratchFloats(784, 784), nativeScratchFloats(784, 784));
  const bytes = 65536 + 4 * (3 * maxOperand + scratchFloats) + 4 * 64;
  const pages = Math.ceil(bytes / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  let cursor = 65536;
  const take = (floats: number): F32 => {
    const v = new Float32Array(memory.buffer, cursor, floats);
    cursor += Math.ceil((floats * 4) / 64) * 64;
    return v;
  };
  const rng = new Rng(1);
  const [a, b, c] = [take(maxOperand), take(maxOperand), take(maxOperand)];
  for (const v of [a, b, c]) for (let i = 0; i < v.length; i++) v[i] = rng.uniform(-1, 1);
  const scratch = take(scratchFloats);
  const kernels = Object.fromEntries(BACKENDS.map((be) => [be, createKernels(be, memory, scratch)])) as Record<Backend, Kernels>;
  return { kernels, a, b, c };
}

/** Median milliseconds per call of each named task. */
async function medians(tasks: [string, () => void][]): Promise<Map<string, number>> {
  const bench = new Bench({ ...budget, throws: true });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  const out = new Map<string, number>();
  for (const task of bench.tasks) {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`bench task ${task.name} did not complete (${r.state})`);
    out.set(task.name, r.latency.p50);
  }
  return out;
}

async function productRows(): Promise<ProductRow[]> {
  const { kernels, a, b, c } = productArena();
  const tasks: [string, () => void][] = [];
  for (const s of SHAPES)
    for (const be of BACKENDS) {
      const k = kernels[be];
      tasks.push([`${be} ${s.label}`, () => k[s.product](c, a, b, s.m, s.n, s.k, s.accumulate)]);
    }
  const ms = await medians(tasks);
  return SHAPES.map((s) => {
    const flop = 2 * s.m * s.n * s.k;
    const gflops = (be: Backend): number => flop / ((ms.get(`${be} ${s.label}`) ?? NaN) * 1e6);
    return { label: s.label, product: s.product, m: s.m, n: s.n, k: s.k, gflops: Object.fromEntries(BACKENDS.map((be) => [be, gflops(be)])) };
  });
}

/** This machine's 128-bit ceiling: the module's register-only f32x4 multiply + add loop. */
function measuredCeiling(): number | null {
  const module = loadWasmModule();
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const peak = new WebAssembly.Instance(module, { env: { memory } }).exports.peakMulAdd;
  if (typeof peak !== 'function') return null;
  const run = peak as (iters: number, x0: number, c0: number, c1: number, step: number) => number;
  const iters = quick ? 5e6 : 3e7;
  run(iters / 10, 1, 0.5, 0.25, 1e-7);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    run(iters, 1, 0.5, 0.25, 1e-7);
    best = Math.min(best, performance.now() - t0);
  }
  // Per iteration: 10 multiplies + 11 adds of 4 lanes.
  return (iters * 21 * 4) / (best * 1e6);
}

// ---- training --------------------------------------------------------------------------------

const REFERENCE_SPEC: ModelSpec = {
  layers: [784, 512, 512, 10], hidden: 'relu', output: 'identity', softmaxOutput: false, bias: true, loss: 'cross-entropy',
};
const SGD: OptimizerConfig = { name: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 };
const TRAIN_BATCHES = [32, 128, 512];

export interface TrainingRow {
  readonly system: string;
  readonly batch: number;
  readonly samplesPerSec: number;
  /** Fraction of the step outside the matrix products (null where not measured). */
  readonly outsideGemm: number | null;
}

function syntheticData(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const nIn = REFERENCE_SPEC.layers[0];
  const x = new Float32Array(n * nIn);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = rng.int(10);
  return { name: 'synthetic-mnist-shaped', n, nIn, x, y, yWidth: 1, classes: 10 };
}

/** One optimizer step of the whole batch on one thread: gradient sum, mean (one slot), SGD. */
function trainingStep(backend: Backend, batch: number, withoutGemm: boolean): () => void {
  const arena = createArena(REFERENCE_SPEC, { shards: 1, maxRows: batch, stateVectors: 1 });
  const layout = paramLayout(REFERENCE_SPEC);
  initParams(arena.params, layout, 'pytorch', 42);
  const real = createKernels(backend, arena.memory, arena.workspaces[0].scratch);
  // The step with the products replaced by no-ops: what remains is the time outside them. The
  // fused forward keeps its bias and activation as separate passes (an upper bound on their cost).
  const noop = (): void => {};
  const kernels: Kernels = withoutGemm
    ? {
      ...real, gemmNT: noop, gemmTN: noop, gemmNN: noop,
      linear(h, z, _inp, _w, b, act, rows, _nIn, nOut) {
        if (b) real.addBias(z, b, rows, nOut);
        real.activate(act, h, z, rows * nOut);
      },
    }
    : real;
  const model: Model = { spec: REFERENCE_SPEC, layout, kernels };
  const p = denseViews(layout, arena.params);
  const g = denseViews(layout, arena.slots[0]);
  const batches = 4;
  const data = syntheticData(batch * batches, 7);
  const slots = [arena.slots[0]];
  let step = 0;
  return () => {
    const lo = (step % batches) * batch;
    shardGradients(model, p, g, arena.slots[0], arena.workspaces[0], batch, data, null, lo, lo + batch);
    step++;
    updateSlice(kernels, SGD, arena.copies[0], arena.copies[0], arena.grad, slots, 1 / batch, 0, layout.size, step);
  };
}

async function trainingRows(): Promise<TrainingRow[]> {
  const rows: TrainingRow[] = [];
  for (const batch of TRAIN_BATCHES) {
    const tasks: [string, () => void][] = [];
    for (const be of BACKENDS) {
      tasks.push([`${be} full`, trainingStep(be, batch, false)]);
      tasks.push([`${be} no-gemm`, trainingStep(be, batch, true)]);
    }
    const ms = await medians(tasks);
    for (const be of BACKENDS) {
      const full = ms.get(`${be} full`) ?? NaN;
      const outside = ms.get(`${be} no-gemm`) ?? NaN;
      rows.push({ system: `dptrain ${be}`, batch, samplesPerSec: (batch * 1000) / full, outsideGemm: outside / full });
    }
  }
  return rows;
}

// ---- TensorFlow.js -----------------------------------------------------------------------------

/**
 * TensorFlow.js rows (@tensorflow/tfjs cpu backend and @tensorflow/tfjs-backend-wasm), training the
 * same network in the same run (median step of a few trainOnBatch calls; the cpu backend is slow,
 * so it gets fewer steps and only batch 128).
 */
async function tfjsRows(): Promise<TrainingRow[]> {
  const rows: TrainingRow[] = [];
  for (const batch of TRAIN_BATCHES) {
    const r = await tfjsTrainingRow('wasm', batch, quick ? 3 : 8);
    rows.push({ system: 'TF.js 4.22 wasm', batch, samplesPerSec: r.samplesPerSec, outsideGemm: null });
  }
  const cpu = await tfjsTrainingRow('cpu', 128, quick ? 2 : 4);
  rows.push({ system: 'TF.js 4.22 cpu', batch: 128, samplesPerSec: cpu.samplesPerSec, outsideGemm: null });
  return rows;
}

// ---- PyTorch -----------------------------------------------------------------------------------

const PYTHON = '/usr/bin/python3';

interface TorchResult {
  readonly torch: string;
  readonly openblas: string;
  readonly products: { label: string; gflops: number }[];
  readonly training: { threads: string; batch: number; samplesPerSec: number }[];
}

/** torch.mm on the same shapes and torch training rows, from bench/torch_peer.py; null (said in one line) without torch. */
function torchPeer(): TorchResult | null {
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log(`PyTorch rows skipped: ${PYTHON} -c 'import torch' failed (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()})`);
    return null;
  }
  const job = { seconds: quick ? 0.3 : 1.5, layers: REFERENCE_SPEC.layers, batches: [128], products: SHAPES };
  // OpenBLAS as a user gets it: without the core type this workplace pins for older builds.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(PYTHON, [join(packageRoot(), 'bench', 'torch_peer.py')], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 20, env });
  if (r.status !== 0) {
    console.log(`PyTorch rows skipped: bench/torch_peer.py failed (${r.stderr.trim().split('\n').pop()})`);
    return null;
  }
  const result = JSON.parse(r.stdout) as TorchResult;
  console.log(`PyTorch ${result.torch}, OpenBLAS kernel ${result.openblas}`);
  return result;
}

// ---- report ----------------------------------------------------------------------------------

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(0)} %`);

function printProducts(rows: ProductRow[], ceiling: number | null): void {
  console.log('\nGEMM, single thread: GFLOP/s = 2·m·n·k / median time');
  const torch = rows.some((r) => r.gflops.torch !== undefined);
  const head = [
    'product', 'm×n×k', 'ts', 'wasm', 'wasm/ts', `of ${REFERENCE_CEILING}`, ceiling ? `of local ${fmt(ceiling)}` : '',
    ...NATIVE, ...NATIVE.map((n) => `${n.slice(7)}/wasm`), ...(torch ? ['torch.mm', ...NATIVE.map((n) => `${n.slice(7)}/torch`)] : []),
  ];
  const table = rows.map((r) => [
    r.label, `${r.m}×${r.n}×${r.k}`, fmt(r.gflops.ts ?? NaN), fmt(r.gflops.wasm ?? NaN), `${fmt((r.gflops.wasm ?? NaN) / (r.gflops.ts ?? NaN))}×`,
    pct((r.gflops.wasm ?? NaN) / REFERENCE_CEILING), ceiling ? pct((r.gflops.wasm ?? NaN) / ceiling) : '',
    ...NATIVE.map((n) => fmt(r.gflops[n] ?? NaN)), ...NATIVE.map((n) => `${fmt((r.gflops[n] ?? NaN) / (r.gflops.wasm ?? NaN))}×`),
    ...(torch ? [fmt(r.gflops.torch ?? NaN), ...NATIVE.map((n) => pct((r.gflops[n] ?? NaN) / (r.gflops.torch ?? NaN)))] : []),
  ]);
  printTable(head, table);
  // The 10-wide output layer against the 512-wide products of the same path.
  for (const be of NATIVE) {
    const wide = rows.filter((r) => r.n === 512 || r.m === 512).map((r) => r.gflops[be] ?? NaN);
    const narrow = rows.filter((r) => r.n === 10).map((r) => r.gflops[be] ?? NaN);
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
    console.log(`${be}: products with n = 10 run at ${pct(mean(narrow) / mean(wide))} of the 512-wide rate`);
  }
}

function printTraining(rows: TrainingRow[]): void {
  console.log('\nTraining 784-512-512-10 (relu, cross-entropy, SGD momentum 0.9), one thread: samples/s');
  const wasmAt = (batch: number): number => rows.find((r) => r.system === 'dptrain wasm' && r.batch === batch)?.samplesPerSec ?? NaN;
  const head = ['system', 'batch', 'samples/s', 'outside GEMM', 'wasm ÷ this'];
  printTable(head, rows.map((r) => [r.system, String(r.batch), fmt(r.samplesPerSec, 0), pct(r.outsideGemm), `${fmt(wasmAt(r.batch) / r.samplesPerSec)}×`]));
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** The folder holding package.json above this file (run from dist/bench or from the sources). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

async function main(): Promise<void> {
  if (!loadWasmModule()) throw new Error('dist/wasm/kernels.wasm is missing or WebAssembly SIMD is unsupported: run npm run build:wasm');
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, quick };
  console.log(`dptrain kernel bench — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${quick ? ' (quick)' : ''}`);
  const ceiling = measuredCeiling();
  if (ceiling) console.log(`measured f32x4 multiply+add ceiling here: ${fmt(ceiling)} GFLOP/s (reference machine: ${REFERENCE_CEILING})`);
  const native = nativeKernelsAvailable();
  if (!native.ok) console.log(`native rows skipped: ${native.why}`);
  const products = await productRows();
  const torch = torchPeer();
  for (const t of torch?.products ?? []) {
    const row = products.find((p) => p.label === t.label);
    if (row) (row.gflops as Record<string, number>).torch = t.gflops;
  }
  printProducts(products, ceiling);
  const torchTraining: TrainingRow[] = (torch?.training ?? []).map((t) => ({
    system: `PyTorch ${torch?.torch} ${t.threads === '1' ? 'set_num_threads(1)' : t.threads}`, batch: t.batch, samplesPerSec: t.samplesPerSec, outsideGemm: null,
  }));
  const training = [...(await trainingRows()), ...torchTraining, ...(await tfjsRows())];
  printTraining(training);
  console.log('\n"outside GEMM": median step time with the three products replaced by no-ops (the fused forward\'s bias and activation kept as passes) ÷ median full step time.');
  const file = join(packageRoot(), 'bench', 'results', 'kernels.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, referenceCeiling: REFERENCE_CEILING, measuredCeiling: ceiling, products, training }, null, 2)}\n`);
  console.log(`\nwritten ${file}`);
}

await main();
