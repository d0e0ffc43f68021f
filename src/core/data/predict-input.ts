// Inputs to predict on, from a file: a CSV (a header row; the model's input columns by name where
// its weights recorded them, target columns allowed and ignored) or IDX images (.gz too), with
// the training data's rules for values.

import { gunzipSync } from 'node:zlib';
import { dataError } from '../errors.js';
import { readBytes } from '../io/files.js';
import type { ModelDescription } from '../io/model-file.js';
import { csvRecords, parseValue } from './csv.js';
import { readImages } from './idx.js';

export interface PredictInputs {
  readonly x: Float32Array;
  readonly rows: number;
}

const IMAGES_MAGIC = 0x00000803;

export function readPredictInputs(file: string, d: ModelDescription): PredictInputs {
  const bytes = readBytes(file);
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  const head = gz ? gunzipHead(bytes, file) : bytes;
  if (head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0) === IMAGES_MAGIC) return idxInputs(file, d);
  return csvInputs(bytes.toString('utf8'), file, d);
}

function gunzipHead(bytes: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (e) {
    throw dataError(file, 'gzip stream', `not gzip-decodable: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function idxInputs(file: string, d: ModelDescription): PredictInputs {
  const images = readImages(file);
  if (images.nIn !== d.inputs.width) throw dataError(file, 'header', `${images.nIn} pixels per image, the model takes ${d.inputs.width} inputs`);
  const x = new Float32Array(images.n * images.nIn);
  // Scaled to [0, 1] as the IDX training data is.
  for (let i = 0; i < x.length; i++) x[i] = images.pixels[i] / 255;
  return { x, rows: images.n };
}

function csvInputs(text: string, file: string, d: ModelDescription): PredictInputs {
  const records = csvRecords(text, file);
  const first = records.next();
  if (first.done) throw dataError(file, 'line 1', 'empty file, expected a header row');
  const header = first.value.fields.map((h) => h.trim());
  const targets = d.targets.kind === 'classes' ? (d.targets.column === undefined ? [] : [d.targets.column]) : [...(d.targets.columns ?? [])];
  let cols: number[];
  if (d.inputs.columns) {
    cols = d.inputs.columns.map((name) => {
      const j = header.indexOf(name);
      if (j < 0) throw dataError(file, 'line 1 (header)', `no input column ${JSON.stringify(name)}; the model takes ${d.inputs.columns!.join(', ')}`);
      return j;
    });
    const extra = header.filter((h) => !d.inputs.columns!.includes(h) && !targets.includes(h));
    if (extra.length > 0) throw dataError(file, 'line 1 (header)', `unexpected column${extra.length > 1 ? 's' : ''} ${extra.join(', ')}; the model takes ${d.inputs.columns.join(', ')}`);
  } else {
    cols = header.map((_, j) => j).filter((j) => !targets.includes(header[j]));
    if (cols.length !== d.inputs.width)
      throw dataError(file, 'line 1 (header)', `${cols.length} input columns, the model takes ${d.inputs.width}`);
  }
  const values: number[] = [];
  let rows = 0;
  for (const { fields, line } of records) {
    if (fields.length !== header.length) throw dataError(file, `line ${line}`, `got ${fields.length} fields, header has ${header.length}`);
    for (const j of cols) values.push(parseValue(fields[j], file, `line ${line}, column ${j + 1} (${JSON.stringify(header[j])})`));
    rows++;
  }
  if (rows === 0) throw dataError(file, 'line 2', 'no data rows after the header');
  return { x: Float32Array.from(values), rows };
}
