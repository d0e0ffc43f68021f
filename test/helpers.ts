// Test helpers: a model + arena in one call, seeded random data, checkGrad (the one gradient check),
// and the compiled CLI's path, scratch folders and a silent reporter for tests that train.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArena, type ArenaViews } from '../src/core/arena.js';
import type { Dataset } from '../src/core/data/types.js';
import { initParams } from '../src/core/init.js';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { createTsKernels } from '../src/core/kernels/ts.js';
import { createWasmKernels } from '../src/core/kernels/wasm.js';
import type { Kernels } from '../src/core/kernels/types.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients, forward, gatherRows, type DenseViews, type Model } from '../src/core/model.js';
import { losses } from '../src/core/losses.js';
import { Rng } from '../src/core/rng.js';
import type { Activation, LossName, ModelSpec } from '../src/core/spec.js';
import type { Reporter } from '../src/coordinator/train/trainer.js';

/** The compiled CLI (`npm run build`), as `dptrain` runs it. */
export const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

/** `dptrain ARGS` run to its end in `cwd`: exit code and output. */
export function runCli(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh folder under the system's temporary one; with `config`, it holds it as c.json. */
export function workdir(prefix: string, config?: object): string {
  const dir = mkdtempSync(join(tmpdir(), `dptrain-${prefix}-`));
  if (config !== undefined) writeFileSync(join(dir, 'c.json'), JSON.stringify(config));
  return dir;
}

/** A reporter that prints nothing and keeps the log lines. */
export function silentReporter(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return { lines, start() {}, step() {}, epoch() {}, close() {}, log: (l) => void lines.push(l) };
}

export type BackendName = 'naive' | 'ts' | 'wasm';
export const BACKENDS: BackendName[] = ['naive', 'ts', 'wasm'];

export function makeKernels(name: BackendName, arena: ArenaViews): Kernels {
  if (name === 'naive') return naiveKernels;
  if (name === 'ts') return createTsKernels(arena.workspaces[0].scratch);
  return createWasmKernels(arena.memory, arena.workspaces[0].scratch);
}

export interface Fixture {
  model: Model;
  arena: ArenaViews;
  p: DenseViews[];
  g: DenseViews[];
}

export function fixture(spec: ModelSpec, backend: BackendName, opts: { maxRows?: number; shards?: number; seed?: number } = {}): Fixture {
  const arena = createArena(spec, { shards: opts.shards ?? 1, maxRows: opts.maxRows ?? 64, stateVectors: 2 });
  const layout = paramLayout(spec);
  initParams(arena.params, layout, 'pytorch', opts.seed ?? 1);
  const model: Model = { spec, layout, kernels: makeKernels(backend, arena) };
  return { model, arena, p: denseViews(layout, arena.params), g: denseViews(layout, arena.slots[0]) };
}

export function spec(layers: number[], hidden: Activation, output: Activation, loss: LossName, bias = true): ModelSpec {
  return { layers, hidden, output, loss, bias, softmaxOutput: false };
}

/** Seeded random data fitting the spec: inputs in [-1, 1], targets fitting the loss. */
export function randomData(s: ModelSpec, n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const nIn = s.layers[0];
  const nOut = s.layers[s.layers.length - 1];
  const x = new Float32Array(n * nIn).map(() => rng.uniform(-1, 1));
  if (s.loss === 'cross-entropy') {
    const y = new Float32Array(n).map(() => rng.int(nOut));
    return { name: 'random', n, nIn, x, y, yWidth: 1, classes: nOut };
  }
  // bce needs targets in [0, 1]; the others take any value.
  const y = new Float32Array(n * nOut).map(() => (s.loss === 'bce' ? rng.next() : rng.uniform(-1, 1)));
  return { name: 'random', n, nIn, x, y, yWidth: nOut, classes: 0 };
}

/** The loss sum over rows [0, n) computed by a plain forward pass. */
export function lossSum(f: Fixture, data: Dataset): number {
  const ws = f.arena.workspaces[0];
  const nOut = f.model.spec.layers[f.model.spec.layers.length - 1];
  gatherRows(ws, data, null, 0, data.n);
  const h = forward(f.model, f.p, ws, data.n);
  return losses[f.model.spec.loss].value(h, ws.y, data.n, nOut);
}

export interface GradCheck {
  worst: number;
  worstIndex: number;
  checked: number;
}

/**
 * Central finite differences of the loss sum against the analytic gradient sum, for every
 * parameter. Returns the worst violation ratio |num - ana| / (atol + rtol·max(|num|, |ana|)),
 * so a pass is worst ≤ 1.
 */
export function checkGrad(f: Fixture, data: Dataset, eps: number, atol: number, rtol: number): GradCheck {
  const { arena, model } = f;
  const ws = arena.workspaces[0];
  const grad = arena.slots[0];
  shardGradients(model, f.p, f.g, grad, ws, arena.layout.maxRows, data, null, 0, data.n);
  const analytic = Float32Array.from(grad.subarray(0, model.layout.size));
  let worst = 0;
  let worstIndex = -1;
  for (let i = 0; i < model.layout.size; i++) {
    const saved = arena.params[i];
    arena.params[i] = saved + eps;
    const plus = lossSum(f, data);
    arena.params[i] = saved - eps;
    const minus = lossSum(f, data);
    arena.params[i] = saved;
    // Divide by the step actually taken: saved ± eps is rounded to float32.
    const step = Math.fround(saved + eps) - Math.fround(saved - eps);
    const numeric = (plus - minus) / step;
    const ratio = Math.abs(numeric - analytic[i]) / (atol + rtol * Math.max(Math.abs(numeric), Math.abs(analytic[i])));
    if (ratio > worst) {
      worst = ratio;
      worstIndex = i;
    }
  }
  return { worst, worstIndex, checked: model.layout.size };
}

/** True when two float vectors are equal bit for bit. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Relative difference of two weight vectors: max |a - b| over max |b| (the ∞-norms). */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}
