// Small generated data sets for smoke tests and demos, drawn from the seeded Rng: xor, two
// spirals, and a sine to regress.

import { configError } from '../errors.js';
import { Rng } from '../rng.js';
import { identityOrder, splitOrder, takeRows, testCount } from './shared.js';
import type { DataSplit, Dataset } from './types.js';

export const SYNTHETIC_SETS = ['xor', 'spirals', 'sine'] as const;
export type SyntheticName = (typeof SYNTHETIC_SETS)[number];

export interface SyntheticOptions {
  readonly name: SyntheticName;
  /** Rows in total, train + test (defaults: xor 4, spirals 400, sine 256). */
  readonly n?: number;
  /** Fraction of the n rows set aside for testing (default 0.2); xor ignores it. */
  readonly test?: number;
}

const DEFAULT_N: Record<SyntheticName, number> = { xor: 4, spirals: 400, sine: 256 };
/** Spirals: angle swept by each arm, and the standard deviation of the noise on each coordinate. */
const SPIRAL_TURNS = 1.5;
const SPIRAL_NOISE = 0.02;

export function loadSynthetic(opts: SyntheticOptions, seed: number): DataSplit {
  const n = opts.n ?? DEFAULT_N[opts.name];
  const min = opts.name === 'xor' ? 4 : 2;
  if (!(Number.isInteger(n) && n >= min)) throw configError('data.n', `must be an integer ≥ ${min} for ${opts.name}, got ${n}`);
  if (opts.name === 'xor') {
    // XOR has only four distinct points, so nothing can be held out: the test set is those same four
    // points, which is what "has it learned XOR" asks anyway.
    return { train: xor(n, 'xor/train'), test: xor(4, 'xor/test') };
  }
  const rng = new Rng(seed);
  const all = opts.name === 'spirals' ? spirals(n, rng) : sine(n, rng);
  const nTest = testCount(n, opts.test ?? 0.2, 'data.test');
  const order = identityOrder(n);
  // Spirals are generated arm by arm; sine rows are already independent draws, the shuffle is harmless.
  rng.shuffle(order);
  const split = splitOrder(order, n - nTest, nTest);
  return { train: takeRows(all, split.train, `${opts.name}/train`), test: takeRows(all, split.test, `${opts.name}/test`) };
}

/** The truth table of XOR, repeated to n rows: inputs 0/1, class a ⊕ b. */
function xor(n: number, name: string): Dataset {
  const x = new Float32Array(2 * n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = i & 1;
    const b = (i >> 1) & 1;
    x[2 * i] = a;
    x[2 * i + 1] = b;
    y[i] = a ^ b;
  }
  return takeRows({ name, n, nIn: 2, x, y, yWidth: 1, classes: 2 }, identityOrder(n), name);
}

/**
 * The two-spirals problem (Lang & Witbrock, 1988): class 0 runs along r = t, θ = 2π·turns·t for
 * t in (0, 1]; class 1 is the same arm turned by π, so the arms interleave. Inputs lie in about [−1, 1]².
 */
function spirals(n: number, rng: Rng): Dataset {
  const x = new Float32Array(2 * n);
  const y = new Float32Array(n);
  const perArm = Math.ceil(n / 2);
  for (let i = 0; i < n; i++) {
    const arm = i < perArm ? 0 : 1;
    const k = arm === 0 ? i : i - perArm;
    const t = (k + 1) / (arm === 0 ? perArm : n - perArm);
    const theta = 2 * Math.PI * SPIRAL_TURNS * t + arm * Math.PI;
    x[2 * i] = t * Math.cos(theta) + SPIRAL_NOISE * rng.normal();
    x[2 * i + 1] = t * Math.sin(theta) + SPIRAL_NOISE * rng.normal();
    y[i] = arm;
  }
  return { name: 'spirals', n, nIn: 2, x, y, yWidth: 1, classes: 2 };
}

/** x uniform in [−π, π], y = sin x: one input, one regression target. */
function sine(n: number, rng: Rng): Dataset {
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = rng.uniform(-Math.PI, Math.PI);
    y[i] = Math.sin(x[i]);
  }
  return { name: 'sine', n, nIn: 1, x, y, yWidth: 1, classes: 0 };
}
