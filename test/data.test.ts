// Data set sources: the embedded MNIST digits, IDX files, CSV files, synthetic sets, and the target
// encoding that loadData applies for the loss.

import { afterAll, describe, it, expect } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadMnist, mnistDigitsFromJson, mnistPackPath, readMnistPack, writeMnistPack } from '../src/core/data/mnist.js';
import { loadIdx } from '../src/core/data/idx.js';
import { csvRecords, loadCsv } from '../src/core/data/csv.js';
import { loadSynthetic } from '../src/core/data/synthetic.js';
import { encodeTargets, loadData } from '../src/core/data/index.js';
import { sharedF32 } from '../src/core/data/shared.js';
import type { Dataset } from '../src/core/data/types.js';
import { sameBits, workdir } from './helpers.js';

const tmpDirs: string[] = [];
const tmp = (): string => {
  const dir = workdir('data');
  tmpDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

function classCounts(d: Dataset, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < d.n; i++) counts[d.y[i]]++;
  return counts;
}

function row(d: Dataset, i: number): number[] {
  return Array.from(d.x.subarray(i * d.nIn, (i + 1) * d.nIn));
}

describe('shared buffers', () => {
  it('sharedF32 is a zeroed Float32Array on a SharedArrayBuffer', () => {
    const a = sharedF32(5);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a.length).toBe(5);
    expect(Array.from(a)).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('mnist (embedded digits)', () => {
  it('the build packs the JSON digits bit for bit; a truncated or foreign file is not taken for a pack', () => {
    const fromJson = mnistDigitsFromJson();
    const dir = workdir('pack');
    const file = join(dir, 'digits.bin');
    writeMnistPack(file, fromJson);
    const packed = readMnistPack(file)!;
    expect(packed.n).toBe(10_000);
    expect(Array.from(packed.y)).toEqual(Array.from(fromJson.y));
    expect(sameBits(packed.x, fromJson.x)).toBe(true);
    // The pack `npm run build` wrote is the one the loader finds.
    const built = mnistPackPath();
    expect(built).not.toBeNull();
    expect(sameBits(readMnistPack(built!)!.x, fromJson.x)).toBe(true);
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 4));
    expect(readMnistPack(file)).toBeNull();
    writeFileSync(file, Buffer.concat([Buffer.from('NOTAPACK'), bytes.subarray(8)]));
    expect(readMnistPack(file)).toBeNull();
    writeFileSync(file, bytes.subarray(0, 20));
    expect(readMnistPack(file)).toBeNull();
    writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(4)]));
    expect(readMnistPack(file)).toBeNull();
  });

  // Digits per class in the package's files (0.json … 9.json).
  const perDigit = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

  it('loads 8000/2000 rows of 784 pixels in [0, 1], every class present, all digits used once', () => {
    const { train, test } = loadMnist({}, 1);
    expect([train.n, test.n]).toEqual([8000, 2000]);
    expect([train.nIn, train.yWidth, train.classes]).toEqual([784, 1, 10]);
    expect(train.x.length).toBe(8000 * 784);
    expect(train.x.buffer).toBeInstanceOf(SharedArrayBuffer);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of train.x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // MNIST's mean pixel is about 0.13.
    expect(sum / train.x.length).toBeGreaterThan(0.08);
    expect(sum / train.x.length).toBeLessThan(0.2);
    const trainCounts = classCounts(train, 10);
    const testCounts = classCounts(test, 10);
    for (let c = 0; c < 10; c++) {
      expect(trainCounts[c]).toBeGreaterThan(500);
      expect(testCounts[c]).toBeGreaterThan(100);
      expect(trainCounts[c] + testCounts[c]).toBe(perDigit[c]);
    }
  });

  it('labels each image with the digit of the file it came from', () => {
    const { train } = loadMnist({ train: 5, test: 0 }, 7);
    const require = createRequire(import.meta.url);
    for (let i = 0; i < train.n; i++) {
      const file = require.resolve(`mnist/src/digits/${train.y[i]}.json`);
      const data = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
      const image = row(train, i);
      let found = false;
      for (let k = 0; k < data.length / 784 && !found; k++)
        found = image.every((v, j) => v === Math.fround(data[k * 784 + j]));
      expect(found).toBe(true);
    }
  });

  it('orders the digits by seed: same seed same order, another seed another', () => {
    const a = loadMnist({ train: 500, test: 100 }, 42);
    const b = loadMnist({ train: 500, test: 100 }, 42);
    const c = loadMnist({ train: 500, test: 100 }, 43);
    expect(Array.from(a.train.y)).toEqual(Array.from(b.train.y));
    expect(Array.from(a.train.x)).toEqual(Array.from(b.train.x));
    expect(Array.from(a.test.y)).toEqual(Array.from(b.test.y));
    expect(Array.from(a.train.y)).not.toEqual(Array.from(c.train.y));
  });

  it('refuses more rows than the package has', () => {
    expect(() => loadMnist({ train: 9000, test: 2000 }, 1)).toThrow(/data\.train \+ data\.test: 9000 \+ 2000 = 11000 exceeds the 10000 digits/);
  });
});

describe('idx files', () => {
  function idxImages(n: number, rows: number, cols: number, pixels: number[]): Buffer {
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x00000803, 0);
    header.writeUInt32BE(n, 4);
    header.writeUInt32BE(rows, 8);
    header.writeUInt32BE(cols, 12);
    return Buffer.concat([header, Buffer.from(pixels)]);
  }
  function idxLabels(labels: number[]): Buffer {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0x00000801, 0);
    header.writeUInt32BE(labels.length, 4);
    return Buffer.concat([header, Buffer.from(labels)]);
  }
  // 12 images of 2×3 pixels; pixel j of image i is 20·i + j, label i mod 10.
  const n = 12;
  const pixels = Array.from({ length: n * 6 }, (_, k) => 20 * Math.floor(k / 6) + (k % 6));
  const labels = Array.from({ length: n }, (_, i) => i % 10);

  function writeSet(dir: string, gzip: boolean): void {
    const z = (b: Buffer): Buffer => (gzip ? gzipSync(b) : b);
    writeFileSync(join(dir, 'img.idx'), z(idxImages(n, 2, 3, pixels)));
    writeFileSync(join(dir, 'lab.idx'), z(idxLabels(labels)));
    writeFileSync(join(dir, 'timg.idx'), z(idxImages(3, 2, 3, pixels.slice(0, 18))));
    writeFileSync(join(dir, 'tlab.idx'), z(idxLabels(labels.slice(0, 3))));
  }

  for (const gzip of [false, true]) {
    it(`round-trips ${gzip ? 'gzipped' : 'plain'} files with test files, relative to baseDir`, () => {
      const dir = tmp();
      writeSet(dir, gzip);
      const { train, test } = loadIdx({ images: 'img.idx', labels: 'lab.idx', testImages: 'timg.idx', testLabels: 'tlab.idx' }, dir, 0);
      expect([train.n, train.nIn, train.yWidth, train.classes, test.n]).toEqual([12, 6, 1, 10, 3]);
      expect(Array.from(train.x)).toEqual(pixels.map((p) => Math.fround(p / 255)));
      expect(Array.from(train.y)).toEqual(labels);
      expect(Array.from(test.y)).toEqual([0, 1, 2]);
      expect(row(test, 2)).toEqual(pixels.slice(12, 18).map((p) => Math.fround(p / 255)));
    });
  }

  it('takes only the first train/test rows when asked', () => {
    const dir = tmp();
    writeSet(dir, false);
    const { train, test } = loadIdx({ images: 'img.idx', labels: 'lab.idx', testImages: 'timg.idx', testLabels: 'tlab.idx', train: 5, test: 2 }, dir, 0);
    expect(Array.from(train.y)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(test.y)).toEqual([0, 1]);
  });

  it('without test files sets aside ⌊n/6⌋ shuffled rows, disjoint from train, by seed', () => {
    const dir = tmp();
    writeSet(dir, true);
    const a = loadIdx({ images: 'img.idx', labels: 'lab.idx' }, dir, 5);
    const b = loadIdx({ images: 'img.idx', labels: 'lab.idx' }, dir, 5);
    expect([a.train.n, a.test.n]).toEqual([10, 2]);
    // Image i is identified by its first pixel, 20·i / 255.
    const ids = (d: Dataset): number[] => Array.from({ length: d.n }, (_, r) => Math.round(d.x[r * 6] * 255 / 20));
    expect([...ids(a.train), ...ids(a.test)].sort((p, q) => p - q)).toEqual([...Array(12).keys()]);
    expect(ids(a.train).map((i) => i % 10)).toEqual(Array.from(a.train.y));
    expect(ids(a.train)).toEqual(ids(b.train));
    expect(ids(a.train)).not.toEqual([...Array(10).keys()]);
  });

  it('reports a truncated image file with declared and present sizes', () => {
    const dir = tmp();
    writeSet(dir, false);
    writeFileSync(join(dir, 'short.idx'), idxImages(n, 2, 3, pixels.slice(0, 70)));
    expect(() => loadIdx({ images: 'short.idx', labels: 'lab.idx' }, dir, 0)).toThrow(
      /short\.idx: data: header declares 12×2×3 = 72 bytes, only 70 present \(truncated\)/,
    );
    writeFileSync(join(dir, 'stub.idx'), idxImages(n, 2, 3, []).subarray(0, 10));
    expect(() => loadIdx({ images: 'stub.idx', labels: 'lab.idx' }, dir, 0)).toThrow(/stub\.idx: header: 10 bytes, an IDX images header needs 16/);
  });

  it('reports trailing bytes and half a pair of test files', () => {
    const dir = tmp();
    writeSet(dir, false);
    writeFileSync(join(dir, 'long.idx'), Buffer.concat([idxLabels(labels), Buffer.from([3])]));
    expect(() => loadIdx({ images: 'img.idx', labels: 'long.idx' }, dir, 0)).toThrow(/long\.idx: data: header declares 12 labels = 12 bytes, but 13 present \(trailing bytes\)/);
    expect(() => loadIdx({ images: 'img.idx', labels: 'lab.idx', testImages: 'timg.idx' }, dir, 0)).toThrow(/data\.testImages\/testLabels: give both/);
  });

  it('reports a wrong magic number, found and expected', () => {
    const dir = tmp();
    writeSet(dir, false);
    expect(() => loadIdx({ images: 'lab.idx', labels: 'lab.idx' }, dir, 0)).toThrow(
      /lab\.idx: bytes 0\.\.3: magic number 0x00000801, expected 0x00000803/,
    );
    expect(() => loadIdx({ images: 'img.idx', labels: 'img.idx' }, dir, 0)).toThrow(
      /img\.idx: bytes 0\.\.3: magic number 0x00000803, expected 0x00000801/,
    );
  });

  it('reports images and labels of different counts', () => {
    const dir = tmp();
    writeSet(dir, false);
    writeFileSync(join(dir, 'lab11.idx'), idxLabels(labels.slice(0, 11)));
    expect(() => loadIdx({ images: 'img.idx', labels: 'lab11.idx' }, dir, 0)).toThrow(/lab11\.idx: header: 11 labels, but .*img\.idx has 12 images/);
  });

  it('reports a label above 9 with its row', () => {
    const dir = tmp();
    writeSet(dir, false);
    writeFileSync(join(dir, 'lab12.idx'), idxLabels([0, 1, 2, 12, 4, 5, 6, 7, 8, 9, 0, 1]));
    expect(() => loadIdx({ images: 'img.idx', labels: 'lab12.idx' }, dir, 0)).toThrow(/lab12\.idx: row 3 \(byte 11\): label 12, expected 0\.\.9/);
  });

  it('reports a file that starts like gzip but does not decode', () => {
    const dir = tmp();
    writeSet(dir, false);
    writeFileSync(join(dir, 'bad.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]));
    expect(() => loadIdx({ images: 'bad.gz', labels: 'lab.idx' }, dir, 0)).toThrow(/bad\.gz: gzip stream: not gzip-decodable/);
  });
});

describe('csv files', () => {
  function write(dir: string, name: string, text: string): string {
    writeFileSync(join(dir, name), text);
    return name;
  }
  const classCsv = 'a,b,label\n' + Array.from({ length: 10 }, (_, i) => `${i},${i / 2},${i % 3}`).join('\n') + '\n';

  it('parses quoted fields, "" escapes, CRLF, a BOM and blank lines, counting lines', () => {
    const text = '\ufeffa,"b, c"\r\n1,"say ""hi"""\r\n\r\n"x\ny",2\r\n';
    expect(Array.from(csvRecords(text, 'f.csv'))).toEqual([
      { fields: ['a', 'b, c'], line: 1 },
      { fields: ['1', 'say "hi"'], line: 2 },
      { fields: ['x\ny', '2'], line: 4 },
    ]);
    expect(() => Array.from(csvRecords('a,"b\n1,2\n', 'f.csv'))).toThrow(/f\.csv: line 1: quoted field never closed/);
  });

  it('round-trips a class target with a test fraction, shuffled by seed', () => {
    const dir = tmp();
    write(dir, 'cls.csv', classCsv);
    const { train, test } = loadCsv({ path: 'cls.csv', target: 'label' }, dir, 3);
    expect([train.n, test.n, train.nIn, train.yWidth, train.classes]).toEqual([8, 2, 2, 1, 3]);
    const rows = [...Array.from({ length: train.n }, (_, r) => [...row(train, r), train.y[r]]), ...Array.from({ length: test.n }, (_, r) => [...row(test, r), test.y[r]])];
    expect(rows.sort((p, q) => p[0] - q[0])).toEqual(Array.from({ length: 10 }, (_, i) => [i, i / 2, i % 3]));
    const again = loadCsv({ path: 'cls.csv', target: 'label' }, dir, 3);
    expect(Array.from(again.train.x)).toEqual(Array.from(train.x));
    expect(Array.from(train.x.subarray(0, 16))).not.toEqual([0, 0, 1, 0.5, 2, 1, 3, 1.5, 4, 2, 5, 2.5, 6, 3, 7, 3.5]);
  });

  it('round-trips a list of regression targets with a test file, CRLF and quotes', () => {
    const dir = tmp();
    write(dir, 'reg.csv', 'y2,x1,"y1",x2\r\n1,2,3,4\r\n5,6,7,8\r\n');
    write(dir, 'reg-test.csv', 'y2,x1,y1,x2\n-1,-2,-3,-4.5e-1\n');
    const { train, test } = loadCsv({ path: 'reg.csv', target: ['y1', 'y2'], testPath: 'reg-test.csv' }, dir, 0);
    expect([train.n, train.nIn, train.yWidth, train.classes, test.n]).toEqual([2, 2, 2, 0, 1]);
    // Inputs in header order, targets in the order listed.
    expect(Array.from(train.x)).toEqual([2, 4, 6, 8]);
    expect(Array.from(train.y)).toEqual([3, 1, 7, 5]);
    expect(Array.from(test.x)).toEqual([-2, Math.fround(-0.45)]);
    expect(Array.from(test.y)).toEqual([-3, -1]);
  });

  it('refuses a test file with another header, and a test file together with a fraction', () => {
    const dir = tmp();
    write(dir, 'cls.csv', classCsv);
    write(dir, 'other.csv', 'a,c,label\n1,2,0\n');
    expect(() => loadCsv({ path: 'cls.csv', target: 'label', testPath: 'other.csv' }, dir, 0)).toThrow(
      /other\.csv: line 1 \(header\): columns a, c, label differ from .*cls\.csv's a, b, label/,
    );
    expect(() => loadCsv({ path: 'cls.csv', target: 'label', testPath: 'cls.csv', test: 0.1 }, dir, 0)).toThrow(/data\.test: give either/);
  });

  it('names file, line and column for a ragged row', () => {
    const dir = tmp();
    write(dir, 'ragged.csv', 'a,b,label\n1,2,0\n3,4,1\n5,6\n');
    expect(() => loadCsv({ path: 'ragged.csv', target: 'label' }, dir, 0)).toThrow(/ragged\.csv: line 4: got 2 fields, header has 3/);
  });

  it('names file, line and column for a non-numeric value', () => {
    const dir = tmp();
    write(dir, 'word.csv', 'a,b,label\n1,2,0\n3,abc,1\n');
    expect(() => loadCsv({ path: 'word.csv', target: 'label' }, dir, 0)).toThrow(/word\.csv: line 3, column 2 \("b"\): non-numeric value "abc"/);
    write(dir, 'blank.csv', 'a,b,label\n1,,0\n');
    expect(() => loadCsv({ path: 'blank.csv', target: 'label' }, dir, 0)).toThrow(/blank\.csv: line 2, column 2 \("b"\): empty value/);
  });

  for (const bad of ['NaN', 'inf', '-Infinity', '1e999']) {
    it(`names file, line and column for the non-finite value ${bad}`, () => {
      const dir = tmp();
      write(dir, 'nonfinite.csv', `a,b,label\n1,2,0\n\n${bad},4,1\n`);
      expect(() => loadCsv({ path: 'nonfinite.csv', target: 'label' }, dir, 0)).toThrow(
        /nonfinite\.csv: line 4, column 1 \("a"\): value ".*" is (NaN or infinite|infinite as float32)/,
      );
    });
  }

  it('names the file and the header for a missing target column', () => {
    const dir = tmp();
    write(dir, 'cls.csv', classCsv);
    expect(() => loadCsv({ path: 'cls.csv', target: 'class' }, dir, 0)).toThrow(/cls\.csv: line 1 \(header\): no target column "class"; the columns are a, b, label/);
    expect(() => loadCsv({ path: 'cls.csv', target: ['b', 'y'] }, dir, 0)).toThrow(/cls\.csv: line 1 \(header\): no target column "y"/);
  });

  it('refuses an empty file and classes that are not non-negative integers', () => {
    const dir = tmp();
    write(dir, 'empty.csv', '');
    expect(() => loadCsv({ path: 'empty.csv', target: 'label' }, dir, 0)).toThrow(/empty\.csv: line 1: empty file/);
    write(dir, 'half.csv', 'a,label\n1,0\n2,1.5\n');
    expect(() => loadCsv({ path: 'half.csv', target: 'label' }, dir, 0)).toThrow(/half\.csv: line 3, column 2 \("label"\): class 1\.5 is not a non-negative integer/);
    write(dir, 'neg.csv', 'a,label\n1,-1\n');
    expect(() => loadCsv({ path: 'neg.csv', target: 'label' }, dir, 0)).toThrow(/neg\.csv: line 2, column 2 \("label"\): class -1 is not/);
  });
});

describe('synthetic sets', () => {
  it('xor: the four points repeated, the test set the same four points', () => {
    const { train, test } = loadSynthetic({ name: 'xor', n: 8 }, 0);
    expect([train.n, train.nIn, train.yWidth, train.classes, test.n]).toEqual([8, 2, 1, 2, 4]);
    expect(Array.from(train.x)).toEqual([0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1]);
    expect(Array.from(train.y)).toEqual([0, 1, 1, 0, 0, 1, 1, 0]);
    expect(Array.from(test.x)).toEqual([0, 0, 1, 0, 0, 1, 1, 1]);
    expect(Array.from(test.y)).toEqual([0, 1, 1, 0]);
    expect(loadSynthetic({ name: 'xor' }, 0).train.n).toBe(4);
  });

  it('spirals: 400 rows of 2 inputs, balanced, deterministic per seed, and the labels follow the arms', () => {
    const { train, test } = loadSynthetic({ name: 'spirals' }, 11);
    expect([train.n, test.n, train.nIn, train.yWidth, train.classes]).toEqual([320, 80, 2, 1, 2]);
    expect(classCounts(train, 2)[0] + classCounts(test, 2)[0]).toBe(200);
    for (const v of train.x) expect(Math.abs(v)).toBeLessThan(1.2);
    const again = loadSynthetic({ name: 'spirals' }, 11);
    expect(Array.from(again.train.x)).toEqual(Array.from(train.x));
    expect(Array.from(loadSynthetic({ name: 'spirals' }, 12).train.x)).not.toEqual(Array.from(train.x));
    // Nearest neighbour in train predicts the test labels: the classes are two interleaved curves.
    let correct = 0;
    for (let i = 0; i < test.n; i++) {
      let best = Infinity;
      let label = -1;
      for (let j = 0; j < train.n; j++) {
        const d = (test.x[2 * i] - train.x[2 * j]) ** 2 + (test.x[2 * i + 1] - train.x[2 * j + 1]) ** 2;
        if (d < best) [best, label] = [d, train.y[j]];
      }
      if (label === test.y[i]) correct++;
    }
    expect(correct / test.n).toBeGreaterThan(0.9);
    // …and no straight line separates them: the best split along x or y is near chance.
    const sideAgreement = (k: number): number => {
      let agree = 0;
      for (let i = 0; i < train.n; i++) if ((train.x[2 * i + k] > 0 ? 1 : 0) === train.y[i]) agree++;
      return Math.max(agree, train.n - agree) / train.n;
    };
    expect(sideAgreement(0)).toBeLessThan(0.75);
    expect(sideAgreement(1)).toBeLessThan(0.75);
  });

  it('sine: x in [−π, π], y = sin x, regression, deterministic per seed', () => {
    const { train, test } = loadSynthetic({ name: 'sine', test: 0.25 }, 4);
    expect([train.n, test.n, train.nIn, train.yWidth, train.classes]).toEqual([192, 64, 1, 1, 0]);
    for (const d of [train, test])
      for (let i = 0; i < d.n; i++) {
        expect(Math.abs(d.x[i])).toBeLessThanOrEqual(Math.PI);
        expect(d.y[i]).toBeCloseTo(Math.sin(d.x[i]), 6);
      }
    expect(Array.from(loadSynthetic({ name: 'sine', test: 0.25 }, 4).test.x)).toEqual(Array.from(test.x));
    expect(Array.from(loadSynthetic({ name: 'sine', test: 0.25 }, 5).test.x)).not.toEqual(Array.from(test.x));
  });
});

describe('target encoding', () => {
  const classes: Dataset = { name: 'c', n: 3, nIn: 1, x: new Float32Array(3), y: Float32Array.from([2, 0, 1]), yWidth: 1, classes: 3 };

  it('one-hot rows of width nOut for a class set under a non-index loss', () => {
    const d = encodeTargets(classes, 'mse', 4);
    expect([d.yWidth, d.classes, d.n]).toEqual([4, 3, 3]);
    expect(Array.from(d.y)).toEqual([0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
    expect(d.y.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('keeps class indices for cross-entropy, 0/1 for one output, values for regression', () => {
    expect(encodeTargets(classes, 'cross-entropy', 3).y).toBe(classes.y);
    const binary = { ...classes, y: Float32Array.from([1, 0, 1]), classes: 2 };
    expect(encodeTargets(binary, 'bce', 1)).toBe(binary);
    const regression = { ...classes, classes: 0 };
    expect(encodeTargets(regression, 'mse', 3)).toBe(regression);
  });

  it('refuses classes that do not fit the outputs', () => {
    expect(() => encodeTargets(classes, 'mse', 2)).toThrow(/data set c: row 0 has class 2, one-hot over 2 outputs needs 0\.\.1/);
    expect(() => encodeTargets(classes, 'bce', 1)).toThrow(/data set c has 3 classes, a model with 1 output can only take 2/);
  });

  it('loadData picks the source and encodes: xor one-hot under mse, csv relative to baseDir', () => {
    const xor = loadData({ source: 'synthetic', name: 'xor' }, { baseDir: '.', seed: 0, loss: 'mse', nOut: 2 });
    expect(xor.train.yWidth).toBe(2);
    expect(Array.from(xor.test.y)).toEqual([1, 0, 0, 1, 0, 1, 1, 0]);
    const dir = tmp();
    writeFileSync(join(dir, 'd.csv'), 'x,c\n1,0\n2,1\n3,1\n4,0\n5,1\n');
    const csv = loadData({ source: 'csv', path: 'd.csv', target: 'c', test: 0.4 }, { baseDir: dir, seed: 1, loss: 'cross-entropy', nOut: 2 });
    expect([csv.train.n, csv.test.n, csv.train.yWidth, csv.train.classes]).toEqual([3, 2, 1, 2]);
  });
});
