// MNIST / Fashion-MNIST IDX files (big-endian header, uint8 data), plain or gzipped: images scaled
// to [0, 1], labels 0..9. Pixels stay bytes until the selected rows are copied into shared memory.

import { kMaxLength } from 'node:buffer';
import { readBytes } from '../io/files.js';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { basename, resolve } from 'node:path';
import { configError, dataError } from '../errors.js';
import { Rng } from '../rng.js';
import { checkCount, identityOrder, sharedF32, splitOrder } from './shared.js';
import type { DataSplit, Dataset } from './types.js';

export interface IdxOptions {
  /** Paths, relative ones against the config file's folder. testImages and testLabels go together. */
  readonly images: string;
  readonly labels: string;
  readonly testImages?: string;
  readonly testLabels?: string;
  /** Use only the first `train` training rows (default: all). */
  readonly train?: number;
  /**
   * With test files: use only their first `test` rows (default: all). Without: set aside `test`
   * rows (default ⌊n/6⌋, at least 1: MNIST's 60,000/10,000 ratio) from the end of the seeded
   * shuffle of the training rows; train then takes the first rows of that shuffle.
   */
  readonly test?: number;
}

const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;
const CLASSES = 10;

export interface IdxImages { readonly n: number; readonly nIn: number; readonly pixels: Uint8Array }

export function loadIdx(cfg: IdxOptions, baseDir: string, seed: number): DataSplit {
  const at = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(baseDir, p));
  const opts = {
    ...cfg,
    images: resolve(baseDir, cfg.images),
    labels: resolve(baseDir, cfg.labels),
    testImages: at(cfg.testImages),
    testLabels: at(cfg.testLabels),
  };
  checkCount(opts.train, 'data.train', 1);
  checkCount(opts.test, 'data.test', 0);
  if ((opts.testImages === undefined) !== (opts.testLabels === undefined))
    throw configError('data.testImages/testLabels', 'give both test files or neither');
  const images = readImages(opts.images);
  const labels = readLabels(opts.labels, images.n, opts.images);
  const name = basename(opts.images);

  if (opts.testImages !== undefined && opts.testLabels !== undefined) {
    const testImages = readImages(opts.testImages);
    const testLabels = readLabels(opts.testLabels, testImages.n, opts.testImages);
    if (testImages.nIn !== images.nIn)
      throw dataError(opts.testImages, 'header', `${testImages.nIn} pixels per image, ${opts.images} has ${images.nIn}`);
    const nTrain = opts.train ?? images.n;
    const nTest = opts.test ?? testImages.n;
    if (nTrain > images.n) throw configError('data.train', `${nTrain} exceeds the ${images.n} images of ${opts.images}`);
    if (nTest > testImages.n) throw configError('data.test', `${nTest} exceeds the ${testImages.n} images of ${opts.testImages}`);
    return {
      train: toDataset(images, labels, identityOrder(nTrain), `${name}/train`),
      test: toDataset(testImages, testLabels, identityOrder(nTest), `${basename(opts.testImages)}/test`),
    };
  }

  const n = images.n;
  const nTest = opts.test ?? Math.max(1, Math.floor(n / 6));
  const nTrain = opts.train ?? n - nTest;
  if (nTrain < 1 || nTrain + nTest > n)
    throw configError('data.train + data.test', `${nTrain} + ${nTest} rows do not fit in the ${n} images of ${opts.images}`);
  const order = identityOrder(n);
  new Rng(seed).shuffle(order);
  const split = splitOrder(order, nTrain, nTest);
  return {
    train: toDataset(images, labels, split.train, `${name}/train`),
    test: toDataset(images, labels, split.test, `${name}/test`),
  };
}

function toDataset(images: IdxImages, labels: Uint8Array, rows: Int32Array, name: string): Dataset {
  const { nIn, pixels } = images;
  const n = rows.length;
  const x = sharedF32(n * nIn);
  const y = sharedF32(n);
  for (let r = 0; r < n; r++) {
    const src = rows[r] * nIn;
    for (let j = 0; j < nIn; j++) x[r * nIn + j] = pixels[src + j] / 255;
    y[r] = labels[rows[r]];
  }
  return { name, n, nIn, x, y, yWidth: 1, classes: CLASSES };
}

export function readImages(file: string): IdxImages {
  const bytes = readMaybeGzipped(file);
  checkMagic(file, bytes, IMAGES_MAGIC, 'IDX images: uint8, 3 dimensions');
  if (bytes.length < 16) throw dataError(file, 'header', `${bytes.length} bytes, an IDX images header needs 16 (truncated)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  checkLength(file, bytes.length - 16, `${n}×${rows}×${cols}`, n * rows * cols);
  if (n === 0 || rows * cols === 0) throw dataError(file, 'header', `declares ${n}×${rows}×${cols}: no pixels`);
  return { n, nIn: rows * cols, pixels: bytes.subarray(16) };
}

/** Labels of `nImages` images from imagesFile, each checked to be a digit class. */
function readLabels(file: string, nImages: number, imagesFile: string): Uint8Array {
  const bytes = readMaybeGzipped(file);
  checkMagic(file, bytes, LABELS_MAGIC, 'IDX labels: uint8, 1 dimension');
  if (bytes.length < 8) throw dataError(file, 'header', `${bytes.length} bytes, an IDX labels header needs 8 (truncated)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  checkLength(file, bytes.length - 8, `${n} labels`, n);
  if (n !== nImages) throw dataError(file, 'header', `${n} labels, but ${imagesFile} has ${nImages} images`);
  const labels = bytes.subarray(8);
  for (let i = 0; i < n; i++)
    if (labels[i] >= CLASSES) throw dataError(file, `row ${i} (byte ${8 + i})`, `label ${labels[i]}, expected 0..${CLASSES - 1}`);
  return labels;
}

function checkMagic(file: string, bytes: Uint8Array, magic: number, what: string): void {
  if (bytes.length < 4) throw dataError(file, 'header', `${bytes.length} bytes, too short for an IDX magic number (truncated)`);
  const found = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  if (found !== magic) throw dataError(file, 'bytes 0..3', `magic number ${hex(found)}, expected ${hex(magic)} (${what})`);
}

function checkLength(file: string, present: number, dims: string, declared: number): void {
  if (present < declared)
    throw dataError(file, 'data', `header declares ${dims} = ${declared} bytes, only ${present} present (truncated)`);
  if (present > declared)
    throw dataError(file, 'data', `header declares ${dims} = ${declared} bytes, but ${present} present (trailing bytes)`);
}

/**
 * The file's bytes, gunzipped if gzipped. Decompression stops a little past the size the IDX header
 * declares: a small file that inflates without end (a gzip bomb) is refused before it fills memory.
 */
function readMaybeGzipped(file: string): Uint8Array {
  const bytes = readBytes(file);
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const declared = declaredSize(file, gunzipHead(file, bytes));
  // The slack lets a file with a few trailing bytes reach checkLength, which names them.
  const cap = Math.min(declared + TRAILING_SLACK, kMaxLength);
  try {
    return gunzipSync(bytes, { maxOutputLength: cap });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw dataError(file, 'gzip stream', `decompresses to more than the ${declared} bytes its IDX header declares (stopped at ${cap})`);
    throw notGzip(file, e);
  }
}

const TRAILING_SLACK = 4096;
/** Compressed bytes inflated to find the header: deflate expands at most about 1032-fold. */
const HEAD_INPUT = 4096;

const notGzip = (file: string, e: unknown): Error =>
  dataError(file, 'gzip stream', `not gzip-decodable: ${e instanceof Error ? e.message : String(e)}`);

/** The start of the decompressed stream, from a bounded prefix of the compressed one. */
function gunzipHead(file: string, bytes: Uint8Array): Uint8Array {
  try {
    return gunzipSync(bytes.subarray(0, HEAD_INPUT), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (e) {
    throw notGzip(file, e);
  }
}

/** Bytes per element of each IDX type code. */
const IDX_TYPE_BYTES: Readonly<Record<number, number>> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };

/** The whole file's size as its header declares it: magic, dimensions, then the elements. */
function declaredSize(file: string, head: Uint8Array): number {
  const dims = head.length >= 4 ? head[3] : 0;
  const headerBytes = 4 + 4 * dims;
  const typeBytes = IDX_TYPE_BYTES[head[2]];
  if (head.length < headerBytes || head[0] !== 0 || head[1] !== 0 || typeBytes === undefined || dims === 0)
    throw dataError(file, 'header', `no IDX header in the first ${HEAD_INPUT} bytes of the gzip stream`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let elements = 1;
  for (let i = 0; i < dims; i++) elements *= view.getUint32(4 + 4 * i);
  return headerBytes + elements * typeBytes;
}

const hex = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;
