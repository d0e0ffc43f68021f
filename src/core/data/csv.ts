// CSV data sets: a header row, then one sample per line; the target is one column of class indices
// or a list of regression columns, every other column is an input.

import { readText } from '../io/files.js';
import { basename, resolve } from 'node:path';
import { configError, dataError } from '../errors.js';
import { Rng } from '../rng.js';
import { identityOrder, splitOrder, takeRows, testCount } from './shared.js';
import type { DataSplit, Dataset } from './types.js';

export interface CsvOptions {
  /** Relative paths are resolved against the config file's folder. */
  readonly path: string;
  /** A column of class indices 0..k−1 (classes = max + 1), or a list of regression columns (in this order). */
  readonly target: string | readonly string[];
  /** A second file with the same header; if absent, `test` (default 0.2) of the seeded shuffle is set aside. */
  readonly testPath?: string;
  readonly test?: number;
}

interface Table {
  readonly header: readonly string[];
  readonly n: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  /** Largest class index seen, −1 for regression. */
  readonly maxClass: number;
  /** The file line each row starts on. */
  readonly lines: Int32Array;
}

export function loadCsv(opts: CsvOptions, baseDir: string, seed: number): DataSplit {
  const classTarget = typeof opts.target === 'string';
  const targets: readonly string[] = typeof opts.target === 'string' ? [opts.target] : opts.target;
  if (targets.length === 0) throw configError('data.target', 'the list of regression targets is empty');
  if (new Set(targets).size !== targets.length) throw configError('data.target', `names a column twice: ${targets.join(', ')}`);
  const file = resolve(baseDir, opts.path);
  const table = readTable(file, targets, classTarget);
  const nIn = table.header.length - targets.length;
  const yWidth = targets.length;
  const name = basename(file);

  if (opts.testPath !== undefined) {
    if (opts.test !== undefined) throw configError('data.test', 'give either data.testPath or a data.test fraction, not both');
    const testFile = resolve(baseDir, opts.testPath);
    const testTable = readTable(testFile, targets, classTarget);
    if (testTable.header.join('\u0000') !== table.header.join('\u0000'))
      throw dataError(testFile, 'line 1 (header)', `columns ${testTable.header.join(', ')} differ from ${file}'s ${table.header.join(', ')}`);
    const classes = classTarget ? Math.max(table.maxClass, testTable.maxClass) + 1 : 0;
    const trainAll: Dataset = { name, n: table.n, nIn, x: table.x, y: table.y, yWidth, classes, origin: { file, lines: table.lines } };
    const testAll: Dataset = { name: basename(testFile), n: testTable.n, nIn, x: testTable.x, y: testTable.y, yWidth, classes, origin: { file: testFile, lines: testTable.lines } };
    return {
      train: takeRows(trainAll, identityOrder(table.n), `${name}/train`),
      test: takeRows(testAll, identityOrder(testTable.n), `${basename(testFile)}/test`),
    };
  }

  const all: Dataset = { name, n: table.n, nIn, x: table.x, y: table.y, yWidth, classes: classTarget ? table.maxClass + 1 : 0, origin: { file, lines: table.lines } };
  const nTest = testCount(table.n, opts.test ?? 0.2, 'data.test');
  const order = identityOrder(table.n);
  new Rng(seed).shuffle(order);
  const split = splitOrder(order, table.n - nTest, nTest);
  return { train: takeRows(all, split.train, `${name}/train`), test: takeRows(all, split.test, `${name}/test`) };
}

function readTable(file: string, targets: readonly string[], classTarget: boolean): Table {
  const text = readText(file);
  const records = csvRecords(text, file);
  const first = records.next();
  if (first.done) throw dataError(file, 'line 1', 'empty file, expected a header row');
  const header = first.value.fields.map((h) => h.trim());
  header.forEach((h, j) => {
    if (header.indexOf(h) !== j) throw dataError(file, `line 1, column ${j + 1}`, `duplicate column name ${JSON.stringify(h)}`);
  });
  const targetCols = targets.map((t) => {
    const j = header.indexOf(t);
    if (j < 0) throw dataError(file, 'line 1 (header)', `no target column ${JSON.stringify(t)}; the columns are ${header.join(', ')}`);
    return j;
  });
  const inputCols = header.map((_, j) => j).filter((j) => !targetCols.includes(j));
  if (inputCols.length === 0) throw dataError(file, 'line 1 (header)', 'no input columns besides the target');

  // Every record takes at least one line, so the line count bounds the rows and no buffer has to grow.
  let maxRows = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) maxRows++;
  const x = new Float32Array(maxRows * inputCols.length);
  const y = new Float32Array(maxRows * targetCols.length);
  const lines = new Int32Array(maxRows);
  let n = 0;
  let maxClass = -1;
  for (const { fields, line } of records) {
    if (fields.length !== header.length) throw dataError(file, `line ${line}`, `got ${fields.length} fields, header has ${header.length}`);
    const at = (j: number): string => `line ${line}, column ${j + 1} (${JSON.stringify(header[j])})`;
    inputCols.forEach((j, k) => (x[n * inputCols.length + k] = parseValue(fields[j], file, at(j))));
    targetCols.forEach((j, k) => {
      const v = parseValue(fields[j], file, at(j));
      if (classTarget) {
        if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 24))
          throw dataError(file, at(j), `class ${fields[j].trim()} is not a non-negative integer`);
        maxClass = Math.max(maxClass, v);
      }
      y[n * targetCols.length + k] = v;
    });
    lines[n] = line;
    n++;
  }
  if (n === 0) throw dataError(file, 'line 2', 'no data rows after the header');
  return { header, n, x: x.subarray(0, n * inputCols.length), y: y.subarray(0, n * targetCols.length), maxClass, lines: lines.subarray(0, n) };
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(?:nan|inf|infinity)$/i;

export function parseValue(field: string, file: string, where: string): number {
  const s = field.trim();
  const shown = JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
  if (NON_FINITE.test(s)) throw dataError(file, where, `value ${shown} is NaN or infinite`);
  if (s === '') throw dataError(file, where, 'empty value, expected a number');
  if (!NUMBER.test(s)) throw dataError(file, where, `non-numeric value ${shown}`);
  const v = Number(s);
  // A value beyond float32's range would become Infinity in the data set.
  if (!Number.isFinite(Math.fround(v))) throw dataError(file, where, `value ${shown} is infinite as float32`);
  return v;
}

export interface CsvRecord {
  readonly fields: string[];
  /** 1-based line on which the record starts. */
  readonly line: number;
}

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

/**
 * Records of comma-separated text: fields optionally in double quotes ("" inside is a quote, and a
 * quoted field may hold commas and line breaks), CRLF or LF line ends, a leading BOM dropped. Empty
 * lines are skipped (so is the trailing one), but still counted in line numbers.
 */
export function* csvRecords(text: string, file: string): Generator<CsvRecord> {
  const len = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < len) {
    if (text.charCodeAt(i) === LF || (text.charCodeAt(i) === CR && text.charCodeAt(i + 1) === LF)) {
      i += text.charCodeAt(i) === CR ? 2 : 1;
      line++;
      continue;
    }
    const start = line;
    const fields: string[] = [];
    for (;;) {
      if (text.charCodeAt(i) === QUOTE) {
        const open = line;
        let value = '';
        let from = ++i;
        for (;;) {
          if (i >= len) throw dataError(file, `line ${open}`, 'quoted field never closed');
          const c = text.charCodeAt(i);
          if (c === LF) line++;
          if (c !== QUOTE) {
            i++;
          } else if (text.charCodeAt(i + 1) === QUOTE) {
            value += text.slice(from, i + 1);
            i += 2;
            from = i;
          } else {
            value += text.slice(from, i);
            i++;
            break;
          }
        }
        fields.push(value);
        const c = text.charCodeAt(i);
        if (!(i >= len || c === COMMA || c === LF || (c === CR && text.charCodeAt(i + 1) === LF)))
          throw dataError(file, `line ${line}, column ${fields.length}`, 'unexpected character after a closing quote');
      } else {
        let j = i;
        for (; j < len; j++) {
          const c = text.charCodeAt(j);
          if (c === COMMA || c === LF) break;
          if (c === QUOTE) throw dataError(file, `line ${line}, column ${fields.length + 1}`, 'quote inside an unquoted field');
        }
        const end = j > i && text.charCodeAt(j - 1) === CR && (j >= len || text.charCodeAt(j) === LF) ? j - 1 : j;
        fields.push(text.slice(i, end));
        i = j;
      }
      if (i >= len) break;
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      i += c === CR ? 2 : 1;
      line++;
      break;
    }
    yield { fields, line: start };
  }
}
