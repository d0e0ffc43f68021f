// safetensors (F32) read and write: 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets } }, then the raw little-endian data. Names and shapes are
// those of the equivalent torch.nn.Sequential, so PyTorch loads our weights and we load its.

import { readBytes } from './files.js';
import { DptrainError } from '../errors.js';
import type { ParamLayout } from '../layout.js';
import type { F32 } from '../kernels/types.js';
import { writeFileAtomic } from './atomic-file.js';

export interface TensorRecord {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const MAX_HEADER = 100 * 1024 * 1024;
const bad = (file: string, what: string): DptrainError => new DptrainError('WEIGHTS_MISMATCH', `${file}: ${what}`);

/** The file's bytes for these named tensors. */
export function encodeSafetensors(tensors: ReadonlyMap<string, TensorRecord>, metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(jsonBytes.length));
  const chunks: Uint8Array[] = [prefix, jsonBytes];
  for (const t of tensors.values()) chunks.push(littleEndianBytes(t.data));
  return chunks;
}

export function decodeSafetensors(buf: Uint8Array, file: string): Map<string, TensorRecord> {
  if (buf.byteLength < 8) throw bad(file, `file is ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen > MAX_HEADER || 8 + headerLen > buf.byteLength)
    throw bad(file, `header length ${headerLen} runs past the end of the ${buf.byteLength}-byte file (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, headerLen).toString('utf8'));
  } catch (e) {
    throw bad(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  const out = new Map<string, TensorRecord>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32') throw bad(file, `tensor ${name}: dtype ${String(e.dtype)}, only F32 is supported`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) throw bad(file, `tensor ${name}: bad shape`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0))
      throw bad(file, `tensor ${name}: bad data_offsets`);
    const [begin, end] = offs as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen) throw bad(file, `tensor ${name}: data [${begin}, ${end}) runs past the ${dataLen} data bytes (truncated?)`);
    if (end - begin !== count * 4) throw bad(file, `tensor ${name}: ${end - begin} bytes for shape [${shape.join(', ')}]`);
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(buf.subarray(dataStart + begin, dataStart + end));
    if (!LITTLE_ENDIAN) swap32(new Uint8Array(data.buffer));
    out.set(name, { shape: shape as number[], data });
  }
  return out;
}

/** Writes the parameters as named tensors, atomically. */
export function saveWeights(path: string, layout: ParamLayout, params: F32, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(namedTensors(layout, params), metadata));
}

export function namedTensors(layout: ParamLayout, params: F32): Map<string, TensorRecord> {
  const tensors = new Map<string, TensorRecord>();
  for (const t of layout.tensors) tensors.set(t.name, { shape: t.shape, data: params.subarray(t.offset, t.offset + t.length) });
  return tensors;
}

/** Reads a weights file into params; names and shapes must match the layout exactly. */
export function loadWeights(path: string, layout: ParamLayout, params: F32): void {
  loadTensorsInto(decodeSafetensors(readBytes(path), path), path, layout, params);
}

export function loadTensorsInto(tensors: ReadonlyMap<string, TensorRecord>, file: string, layout: ParamLayout, params: F32): void {
  for (const t of layout.tensors) {
    const rec = tensors.get(t.name);
    if (!rec) throw bad(file, `missing tensor ${t.name} (shape [${t.shape.join(', ')}])`);
    if (rec.shape.length !== t.shape.length || rec.shape.some((s, i) => s !== t.shape[i]))
      throw bad(file, `tensor ${t.name} has shape [${rec.shape.join(', ')}], the model needs [${t.shape.join(', ')}]`);
    for (let i = 0; i < rec.data.length; i++)
      if (!Number.isFinite(rec.data[i])) throw bad(file, `tensor ${t.name} holds a non-finite value at index ${i}`);
  }
  const expected = new Set(layout.tensors.map((t) => t.name));
  for (const name of tensors.keys()) if (!expected.has(name)) throw bad(file, `unexpected tensor ${name} (not in the model)`);
  for (const t of layout.tensors) params.set(tensors.get(t.name)!.data, t.offset);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndianBytes(data: Float32Array): Uint8Array {
  // Copy out of the (possibly shared) arena so the bytes written are a consistent snapshot.
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (!LITTLE_ENDIAN) swap32(bytes);
  return bytes;
}

function swap32(b: Uint8Array): void {
  for (let i = 0; i < b.length; i += 4) {
    let t = b[i];
    b[i] = b[i + 3];
    b[i + 3] = t;
    t = b[i + 1];
    b[i + 1] = b[i + 2];
    b[i + 2] = t;
  }
}
